"""bench/fit_gpb.py: the arc features reproduce gPb-owt-ucm's arc strengths, the weighted AUC
equals a naive pairwise count, and both fits do what they say on data with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bench_scripts import load_bench

from bottomup.contours import GPb
from bottomup.contours.mpb import GPB_WEIGHTS_COLOR
from bottomup.owt import oriented_watershed

fit_gpb = load_bench("fit_gpb")


def _naive_auc(s, y, w):
    """Sum over every (positive i, negative j) pair of w_i y_i w_j (1 - y_j) [s_i > s_j] (+1/2 on ties)."""
    num = den = 0.0
    for i in range(len(s)):
        for j in range(len(s)):
            pw = w[i] * y[i] * w[j] * (1 - y[j])
            num += pw * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
            den += pw
    return num / den


def test_weighted_auc_by_hand_and_against_the_pairwise_count():
    # hard labels, unit weights: positives 3 and 2 against negatives 1 and 2 (a tie): (2 + 1.5) / 4
    assert fit_gpb.weighted_auc(np.array([3.0, 2, 1, 2]), np.array([1.0, 1, 0, 0]), np.ones(4)) == 0.875
    rng = np.random.default_rng(0)
    s = rng.integers(0, 6, 40).astype(float)  # many ties
    y, w = rng.random(40), rng.random(40) + 0.1
    assert fit_gpb.weighted_auc(s, y, w) == pytest.approx(_naive_auc(s, y, w), rel=1e-12)


def _synthetic(rng, n=20_000):
    """Arcs whose boundary probability follows 2 f0 + f1 (f2 is noise), all features >= 0."""
    f = rng.gamma(2.0, 1.0, (n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * f[:, 0] + f[:, 1] - 6)))).astype(float)
    return f, y, rng.integers(1, 20, n).astype(float)


def test_logistic_fit_recovers_the_weights():
    f, y, w = _synthetic(np.random.default_rng(1), 60_000)
    u, _ = fit_gpb.fit_weights(f, y, w, l2=0.0)
    assert (u >= 0).all()
    np.testing.assert_allclose(u / u[0], [1.0, 0.5, 0.0], atol=0.06)


def test_auc_ascent_moves_off_the_noise_and_never_loses():
    f, y, w = _synthetic(np.random.default_rng(2))
    start = np.array([0.2, 0.2, 1.0])  # mostly the noise column
    u, auc = fit_gpb.ascend_auc(f, y, w, start)
    assert auc == pytest.approx(fit_gpb.weighted_auc(f @ u, y, w))
    assert auc > fit_gpb.weighted_auc(f @ start, y, w) + 0.05
    assert (u >= 0).all() and u[2] / u[0] < 0.25
    # from the optimum's direction it stays within a step of it
    best = np.array([2.0, 1.0, 0.0])
    u2, auc2 = fit_gpb.ascend_auc(f, y, w, best)
    assert auc2 >= fit_gpb.weighted_auc(f @ best, y, w)


def _image(seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((48, 56, 3))
    img[:, 28:] = (0.8, 0.3, 0.1)
    img[30:, :20] = (0.1, 0.4, 0.8)
    return np.clip(img + 0.04 * rng.standard_normal(img.shape), 0, 1)


def test_channels_reproduce_gpb_and_the_arc_strengths():
    img = _image()
    feats, g = fit_gpb.channels(img)
    assert feats.shape == (13, 8, 48, 56)
    _, oriented = GPb(multiscale=False).contours(img)
    np.testing.assert_allclose(g, oriented, atol=1e-6)
    # the arc means of the channels, weighted by the release, are the mean strengths the UCM
    # merges by (where no pixel is clipped at 1)
    labels, pieces = oriented_watershed(g.max(axis=0), g, descent_first=True)
    inv, pairs = pieces.region_pairs(labels)
    mean_strength = np.bincount(inv, pieces.strengths) / np.bincount(inv)
    raw = np.tensordot(np.asarray(GPB_WEIGHTS_COLOR), feats, axes=1)
    assert raw.max() < 1  # nothing clipped in this image
    f, _, length = fit_gpb.arc_means(feats, g, labels, pieces)
    np.testing.assert_allclose(f @ np.asarray(GPB_WEIGHTS_COLOR), mean_strength, atol=1e-6)
    np.testing.assert_array_equal(length, np.bincount(inv))


def _two_image_bsds(tmp_path):
    import scipy.io as sio
    from skimage.io import imsave

    root = tmp_path / "bsds500"
    (root / "data" / "images" / "train").mkdir(parents=True)
    (root / "data" / "groundTruth" / "train").mkdir(parents=True)
    for i in range(2):
        seg = np.ones((48, 56), np.uint16)
        seg[:, 28:] = 2
        seg[30:, :20] = 3
        imsave(root / "data" / "images" / "train" / f"{i}.jpg", (255 * _image(i)).astype(np.uint8),
               check_contrast=False)
        cell = np.empty((1, 1), dtype=object)
        cell[0, 0] = {"Segmentation": seg, "Boundaries": np.zeros_like(seg, bool)}
        sio.savemat(root / "data" / "groundTruth" / "train" / f"{i}.mat", {"groundTruth": cell})
    return root


def test_cache_then_fit_end_to_end(tmp_path):
    root = _two_image_bsds(tmp_path)
    cache = tmp_path / "cache"
    assert fit_gpb.main(["cache", "--root", str(root), "--cache", str(cache)]) == 0
    files = sorted(cache.glob("train_*.npz"))
    assert [p.name for p in files] == ["train_0.npz", "train_1.npz"]
    stamps = [p.stat().st_mtime_ns for p in files]
    assert fit_gpb.main(["cache", "--root", str(root), "--cache", str(cache)]) == 0  # resumes: untouched
    assert [p.stat().st_mtime_ns for p in files] == stamps
    with np.load(files[0]) as d:
        assert d["f"].shape[1] == 13 and len(d["y"]) == len(d["w"]) == len(d["f"])
        assert set(np.unique(d["y"])) <= {0.0, 1.0}  # one annotator
    out = tmp_path / "fit.json"
    assert fit_gpb.main(["fit", "--cache", str(cache), "--hold-every", "0", "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert len(s["fitted"]) == 13 and min(s["fitted"]) >= 0 and s["n_fit"] == 2
    assert s["fit"]["fitted"]["auc"] >= s["fit"]["release"]["auc"]


def test_missing_cache_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no cached arcs"):
        fit_gpb.main(["fit", "--cache", str(tmp_path)])


def test_weighted_source_with_the_release_weights_is_the_default_segment():
    import bottomup

    img = _image(3)
    ours = bottomup.segment(img, contours=fit_gpb.weighted_source(GPB_WEIGHTS_COLOR)).to_ucm2()
    np.testing.assert_allclose(ours, bottomup.segment(img).to_ucm2(), atol=1e-5)
    other = list(GPB_WEIGHTS_COLOR)
    other[-1] = 0.0  # without sPb: another hierarchy
    assert not np.allclose(bottomup.segment(img, contours=fit_gpb.weighted_source(other)).to_ucm2(), ours,
                           atol=1e-3)
    with pytest.raises(ValueError, match="13 values"):
        fit_gpb.weighted_gpb(np.zeros((13, 8, 4, 4), np.float32), [1.0] * 12)


def test_segment_command_rejects_a_bad_weights_file(tmp_path):
    bad = tmp_path / "w.json"
    bad.write_text('{"fitted": [1, 2]}')
    with pytest.raises(SystemExit, match="13 weights"):
        fit_gpb.main(["segment", "--weights", str(bad), "--out", str(tmp_path / "o"),
                      "--root", str(tmp_path)])
    with pytest.raises(SystemExit, match="no such file"):
        fit_gpb.main(["segment", "--weights", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")])
