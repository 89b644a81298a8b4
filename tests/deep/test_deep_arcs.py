"""Fitting the arc scorer (deep.contours.arcs) and the learned-arcs default of segment(contours="learned")."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bottomup import segment
from bottomup.hierarchy import hierarchy_from_pieces
from bottomup.owt.arc_scores import FEATURES, load_arc_scorer, rescore_pieces
from bottomup.pipeline import finest_partition
from deep.contours.arcs import fit_arc_scorer, weighted_bce


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    p = 1 / (1 + np.exp(-(3 * x[:, 0] - 2 * x[:, 1] * x[:, 2])))
    y = (rng.random(n) < p).astype(float)
    w = rng.integers(1, 20, n).astype(float)
    return x, y, w, p


def test_weighted_bce_by_hand():
    # -(1 * log .8 + 3 * log(1 - .4)) / 4, and a soft target mixes both terms
    assert weighted_bce([0.8, 0.4], [1, 0], [1, 3]) == pytest.approx(-(np.log(0.8) + 3 * np.log(0.6)) / 4)
    assert weighted_bce([0.5], [0.3], [2]) == pytest.approx(np.log(2))


def test_fit_learns_a_nonlinear_rule_and_is_deterministic():
    x, y, w, p = _data()
    xt, yt, wt, pt = _data(seed=1)
    s = fit_arc_scorer(x, y, w, hidden=16, epochs=15, batch_size=256, lr=3e-3, meta={"k": 1})
    constant = weighted_bce(np.full(yt.shape, np.average(y, weights=w)), yt, wt)
    oracle = weighted_bce(pt, yt, wt)
    got = weighted_bce(s(xt), yt, wt)
    # most of the way from the constant to the true probabilities, on unseen data
    assert got < oracle + 0.25 * (constant - oracle), (got, oracle, constant)
    assert s.meta == {"k": 1} and len(s.weights) == 3 and s.weights[0].shape == (4, 16)
    again = fit_arc_scorer(x, y, w, hidden=16, epochs=15, batch_size=256, lr=3e-3)
    for a, b in zip(s.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_checks_its_inputs():
    x, y, w, _ = _data(50)
    with pytest.raises(ValueError, match=r"\(A, F\)"):
        fit_arc_scorer(x[:, 0], y, w)
    with pytest.raises(ValueError, match="finite"):
        fit_arc_scorer(np.where(x > 1, np.nan, x), y, w)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_arc_scorer(x, y * 2, w)
    with pytest.raises(ValueError, match=">= 1"):
        fit_arc_scorer(x, y, w, hidden=0)


def test_learned_contours_use_the_shipped_arc_scorer_by_default():
    rng = np.random.default_rng(0)
    img = np.zeros((48, 64, 3))
    img[:, 30:] = (0.9, 0.2, 0.1)
    img[30:, :20] = (0.1, 0.3, 0.8)
    img = np.clip(img + 0.03 * rng.standard_normal(img.shape), 0, 1)
    h = segment(img, contours="learned")
    pb, oriented, labels, pieces = finest_partition(img, "learned")
    scored = rescore_pieces(img, pb, oriented, labels, pieces, load_arc_scorer())
    manual = hierarchy_from_pieces(labels, scored)
    # (torch's CPU kernels may differ in the last bits between calls)
    np.testing.assert_allclose(h.to_ucm2(), manual.to_ucm2(), atol=1e-6)
    mean = segment(img, contours="learned", arcs="mean")
    np.testing.assert_array_equal(mean.leaf_labels, h.leaf_labels)  # same partition, other levels
    assert not np.array_equal(mean.to_ucm2(), h.to_ucm2())
    # the two true boundaries are the strongest arcs: a 3-region cut follows the colours
    cut = h.cut(n_regions=3)
    assert len({cut[5, 5], cut[5, 50], cut[40, 5]}) == 3


def _two_image_bsds(tmp_path):
    import scipy.io as sio
    from skimage.io import imsave

    root = tmp_path / "bsds500"
    (root / "data" / "images" / "train").mkdir(parents=True)
    (root / "data" / "groundTruth" / "train").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(2):
        seg = np.ones((40, 48), np.uint16)
        seg[:, 24 + 4 * i:] = 2
        seg[25:, :12] = 3
        img = np.stack([seg == 2, seg == 3, seg == 1], -1) * 180.0 + 20
        img = img + 10 * rng.standard_normal((40, 48, 3))
        imsave(root / "data" / "images" / "train" / f"{i}.jpg", np.clip(img, 0, 255).astype(np.uint8),
               check_contrast=False)
        cell = np.empty((1, 1), dtype=object)
        cell[0, 0] = {"Segmentation": seg, "Boundaries": np.zeros_like(seg, bool)}
        sio.savemat(root / "data" / "groundTruth" / "train" / f"{i}.mat", {"groundTruth": cell})
    return root


def _train_arcs():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import train_arcs

    return train_arcs


def test_train_arcs_script_on_two_images(tmp_path):
    root = _two_image_bsds(tmp_path)
    train_arcs = _train_arcs()

    out = tmp_path / "arcs.npz"
    args = ["--root", str(root), "--cache", str(tmp_path / "cache"), "--out", str(out),
            "--hold-every", "0", "--epochs", "40", "--hidden", "8", "--json", str(tmp_path / "s.json")]
    assert train_arcs.main(args) == 0
    s = load_arc_scorer(out)
    assert s.mean.size == len(FEATURES) and s.meta["images_fit"] == 2
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert [n.split("-")[0] for n in cached] == ["train_0", "train_1"]  # NAME-KEY.npz (arcs_key)
    # rerun: arcs come from the cache (files untouched), same scorer
    stamp = [(tmp_path / "cache" / n).stat().st_mtime_ns for n in cached]
    assert train_arcs.main(args) == 0
    assert [(tmp_path / "cache" / n).stat().st_mtime_ns for n in cached] == stamp
    np.testing.assert_array_equal(load_arc_scorer(out).weights[0], s.weights[0])


def test_train_arcs_on_another_detectors_maps(tmp_path):
    import cv2

    root = _two_image_bsds(tmp_path)
    train_arcs = _train_arcs()
    pbs = tmp_path / "pb"
    pbs.mkdir()
    for i in range(2):  # a stand-in detector: the colour gradient magnitude of the image
        img = cv2.imread(str(root / "data" / "images" / "train" / f"{i}.jpg")).astype(float)
        g = sum(np.abs(cv2.Sobel(img, cv2.CV_64F, dx, 1 - dx)).sum(-1) for dx in (0, 1))
        cv2.imwrite(str(pbs / f"{i}.png"), (255 * g / g.max()).astype(np.uint8))
    out = tmp_path / "mine.npz"
    base = ["--root", str(root), "--out", str(out), "--hold-every", "0", "--epochs", "20", "--hidden", "8"]
    assert train_arcs.main(base + ["--cache", str(tmp_path / "c"), "--pb-dir", str(pbs)]) == 0
    s = load_arc_scorer(out)
    assert "pb-dir" in s.meta["contours"] and s.meta["images_fit"] == 2
    # the scorer plugs into segment() with the same detector
    img = np.asarray(cv2.imread(str(root / "data" / "images" / "train" / "0.jpg"))[..., ::-1] / 255.0)
    pb = cv2.imread(str(pbs / "0.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    h = segment(img, contours=lambda _: (pb, None), arcs=s)
    assert h.shape == img.shape[:2] and ((h.levels > 0) & (h.levels < 1)).all()
    # a cache made from one source is not reused for another: their files have other keys
    im, gt = root / "data" / "images" / "train" / "0.jpg", root / "data" / "groundTruth" / "train" / "0.mat"
    mine = train_arcs.arcs_key(im, gt, pbs / "0.png")
    assert mine != train_arcs.arcs_key(im, gt)  # the shipped network's contours
    assert any(mine in p.name for p in (tmp_path / "c").iterdir())
    (pbs / "1.png").unlink()
    with pytest.raises(SystemExit):
        train_arcs.main(base + ["--cache", str(tmp_path / "c2"), "--pb-dir", str(pbs)])


@pytest.mark.slow
def test_learned_arcs_on_ten_bsds_val_images(bsds_root, tmp_path):
    """Regression on real data: the first 10 BSDS500 val images, learned against mean arcs
    (measured when the scorer shipped: ODS .783 vs .765, Covering .630 vs .588)."""
    from bottomup.io import read_image
    from bottomup.metrics.bsds import evaluate_folder

    gt_dir = bsds_root / "data" / "groundTruth" / "val"
    ids = sorted(p.stem for p in gt_dir.glob("*.mat"))[:10]
    scorer = load_arc_scorer()
    for name in ("learned", "mean"):
        (tmp_path / name).mkdir()
    for iid in ids:
        img = read_image(bsds_root / "data" / "images" / "val" / f"{iid}.jpg")
        pb, oriented, labels, pieces = finest_partition(img, "learned")
        scored = rescore_pieces(img, pb, oriented, labels, pieces, scorer)
        np.savez(tmp_path / "learned" / f"{iid}.npz", ucm2=hierarchy_from_pieces(labels, scored).to_ucm2())
        np.savez(tmp_path / "mean" / f"{iid}.npz", ucm2=hierarchy_from_pieces(labels, pieces).to_ucm2())
    fig = {name: evaluate_folder(tmp_path / name, gt_dir, ids=ids, cache_dir=None, progress=False)
           for name in ("learned", "mean")}
    assert fig["learned"]["ods"] > 0.775, fig["learned"]["ods"]
    assert fig["learned"]["ods"] > fig["mean"]["ods"] + 0.01
    assert fig["learned"]["covering_ods"] > fig["mean"]["covering_ods"] + 0.02
