"""Learned arc scores (bottomup.owt.arc_scores): features against a naive loop, targets by hand,
the scorer's forward pass, file round trip, and the ``segment(arcs=...)`` stage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2lab

from bottomup import segment
from bottomup.contours import GPb
from bottomup.hierarchy import hierarchy_from_pieces
from bottomup.owt import oriented_watershed
from bottomup.owt.arc_scores import (
    FEATURES,
    ArcScorer,
    arc_features,
    load_arc_scorer,
    region_pair_targets,
    rescore_pieces,
    save_arc_scorer,
)
from bottomup.pipeline import finest_partition


def naive_arc_features(image, pb, oriented, labels, pieces):
    """Dictionary-and-loop reference of ``arc_features``: {(a, b): feature vector}."""
    h, w = labels.shape
    faces = {}  # (a, b) -> list of (strength, pb, agreement, on ridge, piece)
    for m, (r, c) in enumerate(pieces.faces):
        if r % 2 == 1:
            p, q = ((r - 1) // 2, (c - 2) // 2), ((r - 1) // 2, (c - 2) // 2 + 1)
        else:
            p, q = ((r - 2) // 2, (c - 1) // 2), ((r - 2) // 2 + 1, (c - 1) // 2)
        key = tuple(sorted((int(labels[p]), int(labels[q]))))
        ch = pieces.piece_channel[pieces.face_piece[m]]
        ag = np.mean([oriented[ch][z] / (oriented[:, z[0], z[1]].max() + 1e-6) for z in (p, q)])
        s = pieces.strengths[m]
        faces.setdefault(key, []).append((s, max(pb[p], pb[q]), ag, s > 0, pieces.face_piece[m]))
    lab = rgb2lab(image)
    regions = {}
    for k in range(labels.max() + 1):
        px = labels == k
        regions[k] = dict(area=px.sum(), mean=lab[px].mean(0), sd=lab[px].std(0), pb=pb[px].mean())
    mean_s = {key: np.mean([f[0] for f in v]) for key, v in faces.items()}
    perim = {k: sum(len(v) for key, v in faces.items() if k in key) for k in regions}
    ctx = {k: max(mean_s[key] for key in faces if k in key) for k in regions}
    out = {}
    for (a, b), v in faces.items():
        s, pbs, ag, ridge, piece = (np.array([f[i] for f in v]) for i in range(5))
        ra, rb = regions[a], regions[b]
        d = np.linalg.norm(ra["mean"] - rb["mean"])
        out[a, b] = np.array([
            s.mean(), np.sqrt(s.mean()), pbs.mean(), pbs.max(), pbs.min(), pbs.std(),
            ag.mean(), ridge.mean(), np.log(len(v)), np.log1p(len(set(piece.tolist()))),
            np.log(min(ra["area"], rb["area"])), np.log(max(ra["area"], rb["area"])),
            len(v) / min(perim[a], perim[b]), d / 100, abs(ra["mean"][0] - rb["mean"][0]) / 100,
            d / (1 + 0.5 * (ra["sd"].sum() + rb["sd"].sum())),
            ra["pb"] + rb["pb"], abs(ra["pb"] - rb["pb"]),
            mean_s[a, b] / (max(ctx[a], ctx[b]) + 1e-6), mean_s[a, b] / (min(ctx[a], ctx[b]) + 1e-6),
        ])
    return out


@pytest.fixture
def small_case():
    rng = np.random.default_rng(3)
    pb = gaussian_filter(rng.random((18, 23)), 1.5)
    pb = (pb - pb.min()) / (pb.max() - pb.min())
    oriented = rng.random((8, 18, 23)) * pb
    image = rng.random((18, 23, 3))
    labels, pieces = oriented_watershed(pb, oriented, descent_first=True)
    return image, pb, oriented, labels, pieces


def test_features_match_naive_loop(small_case):
    image, pb, oriented, labels, pieces = small_case
    f = arc_features(image, pb, oriented, labels, pieces)
    ref = naive_arc_features(image, pb, oriented, labels, pieces)
    assert labels.max() >= 3 and f.x.shape == (len(ref), len(FEATURES))
    for i, (a, b) in enumerate(f.regions):
        np.testing.assert_allclose(f.x[i], ref[a, b], rtol=1e-9, atol=1e-12, err_msg=f"arc {a}-{b}")
    # every face maps to its arc and the lengths count the faces
    np.testing.assert_array_equal(np.bincount(f.face_arc, minlength=len(ref)), f.length)


def test_features_without_oriented_stack_agree_fully(small_case):
    image, pb, _, labels, pieces = small_case
    f = arc_features(image, pb, None, labels, pieces)
    np.testing.assert_array_equal(f.x[:, FEATURES.index("agreement")], 1.0)


def test_features_shape_mismatch_and_single_region():
    pb = np.zeros((5, 6))
    labels, pieces = oriented_watershed(pb)
    f = arc_features(np.zeros((5, 6, 3)), pb, None, labels, pieces)
    assert f.x.shape == (0, len(FEATURES)) and f.regions.shape == (0, 2)
    with pytest.raises(ValueError, match="share one"):
        arc_features(np.zeros((5, 7, 3)), pb, None, labels, pieces)


def test_region_pair_targets_by_hand():
    # four finest regions in 2x2 blocks of a 4x4 image
    labels = np.kron(np.array([[0, 1], [2, 3]]), np.ones((2, 2), int))
    regions = np.array([[0, 1], [0, 2], [1, 3], [2, 3]])
    left_right = np.kron(np.array([[5, 9], [5, 9]]), np.ones((2, 2), int))   # separates 0|1 and 2|3
    top_bottom = np.kron(np.array([[1, 1], [2, 2]]), np.ones((2, 2), int))   # separates 0|2 and 1|3
    np.testing.assert_array_equal(region_pair_targets(labels, regions, [left_right]), [1, 0, 0, 1])
    np.testing.assert_array_equal(region_pair_targets(labels, regions, [left_right, top_bottom]),
                                  [0.5, 0.5, 0.5, 0.5])
    # a region takes the segment covering most of it: one stray pixel changes nothing
    stray = left_right.copy()
    stray[0, 0] = 9
    np.testing.assert_array_equal(region_pair_targets(labels, regions, [stray]), [1, 0, 0, 1])
    with pytest.raises(ValueError, match="at least one"):
        region_pair_targets(labels, regions, [])
    with pytest.raises(ValueError, match="shape"):
        region_pair_targets(labels, regions, [np.zeros((3, 3), int)])


def _scorer(rng, hidden=(5, 4)):
    f = len(FEATURES)
    dims = (f,) + hidden + (1,)
    return ArcScorer(rng.normal(size=f), rng.random(f) + 0.5,
                     tuple(rng.normal(size=(dims[i], dims[i + 1])) for i in range(len(dims) - 1)),
                     tuple(rng.normal(size=dims[i + 1]) for i in range(len(dims) - 1)), {"note": "test"})


def test_scorer_forward_by_hand_and_roundtrip(tmp_path):
    # one hidden layer, written out: sigmoid(w2 . relu(W1 (x - m) / s + b1) + b2)
    s = ArcScorer(np.array([1.0, 0.0]), np.array([2.0, 1.0]),
                  (np.array([[1.0, -1.0], [1.0, 1.0]]), np.array([[2.0], [-1.0]])),
                  (np.array([0.0, 0.5]), np.array([0.25])), {})
    x = np.array([[3.0, 1.0], [1.0, -2.0]])
    # row 0: z = (1, 1) -> hidden relu(2, 0.5) -> 2*2 - 0.5 + 0.25 = 3.75
    # row 1: z = (0, -2) -> hidden relu(-2, -1.5) = (0, 0) -> 0.25
    np.testing.assert_allclose(s(x), 1 / (1 + np.exp(-np.array([3.75, 0.25]))))
    with pytest.raises(ValueError, match=r"\(A, 2\)"):
        s(np.zeros((3, 3)))
    rng = np.random.default_rng(0)
    s2 = _scorer(rng)
    save_arc_scorer(tmp_path / "s.npz", s2)
    back = load_arc_scorer(tmp_path / "s.npz")
    xx = rng.normal(size=(7, len(FEATURES)))
    np.testing.assert_array_equal(back(xx), s2(xx))
    assert back.meta == {"note": "test"} and not list(tmp_path.glob("*.tmp*"))


def test_scorer_file_with_other_features_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    save_arc_scorer(tmp_path / "s.npz", _scorer(rng))
    d = dict(np.load(tmp_path / "s.npz"))
    d["features"] = np.array(FEATURES[:-1] + ("something_else",))
    np.savez(tmp_path / "bad.npz", **d)
    with pytest.raises(ValueError, match="differ"):
        load_arc_scorer(tmp_path / "bad.npz")


def test_shipped_scorer_loads_and_scores_probabilities(small_case):
    s = load_arc_scorer()
    assert s.mean.size == len(FEATURES) and "BSDS500 train" in s.meta["data"]
    image, pb, oriented, labels, pieces = small_case
    p = s(arc_features(image, pb, oriented, labels, pieces).x)
    assert ((p > 0) & (p < 1)).all()


def test_each_shipped_scorer_is_named_by_the_contours_it_was_fitted_on(small_case):
    from bottomup.contours import GPb
    from bottomup.contours.source import ARC_RULES
    from bottomup.owt.arc_scores import SHIPPED_ARC_SCORERS, shipped_arc_scorer_path
    from bottomup.pipeline import arc_scorer, model_files

    assert set(SHIPPED_ARC_SCORERS) == set(ARC_RULES) - {"mean"}
    assert load_arc_scorer("gpb").meta["contours"].startswith("gpb")
    assert "learned" in load_arc_scorer("learned").meta["contours"]
    # the named rule and the file behind it are the same scorer
    image, pb, oriented, labels, pieces = small_case
    x = arc_features(image, pb, oriented, labels, pieces).x
    np.testing.assert_array_equal(arc_scorer("gpb")(x), load_arc_scorer(shipped_arc_scorer_path("gpb"))(x))
    assert not np.allclose(arc_scorer("gpb")(x), arc_scorer("learned")(x))
    assert [p.name for p in model_files(GPb(), "gpb")] == ["arcs_gpb.npz"]
    with pytest.raises(ValueError, match="shipped"):
        shipped_arc_scorer_path("bogus")


def test_rescore_pieces_constant_along_each_arc(small_case):
    image, pb, oriented, labels, pieces = small_case
    s = _scorer(np.random.default_rng(2))
    new = rescore_pieces(image, pb, oriented, labels, pieces, s)
    f = arc_features(image, pb, oriented, labels, pieces)
    np.testing.assert_array_equal(new.strengths, s(f.x)[f.face_arc])
    np.testing.assert_array_equal(new.faces, pieces.faces)
    one, p1 = oriented_watershed(np.zeros((4, 4)))
    assert rescore_pieces(np.zeros((4, 4, 3)), np.zeros((4, 4)), None, one, p1, s) is p1


def test_segment_arcs_stage():
    rng = np.random.default_rng(5)
    img = np.zeros((32, 40, 3))
    img[:, 20:] = 0.8
    img[20:, :10] = 0.4
    img = np.clip(img + 0.02 * rng.standard_normal(img.shape), 0, 1)
    base = segment(img, GPb("fast"))
    # "mean" is what gPb gets by default
    np.testing.assert_array_equal(segment(img, GPb("fast"), arcs="mean").to_ucm2(),
                                  base.to_ucm2())
    s = _scorer(rng)
    h = segment(img, GPb("fast"), arcs=s)
    pb, oriented, labels, pieces = finest_partition(img, GPb("fast"))
    manual = hierarchy_from_pieces(labels, rescore_pieces(img, pb, oriented, labels, pieces, s))
    np.testing.assert_array_equal(h.to_ucm2(), manual.to_ucm2())
    assert ((h.levels > 0) & (h.levels < 1)).all()
    with pytest.raises(ValueError, match="`arcs`"):
        segment(img, GPb("fast"), arcs="bogus")
    with pytest.raises(TypeError, match="`arcs`"):
        segment(img, GPb("fast"), arcs=3)


def test_multiscale_segment_passes_the_scorer_on():
    from bottomup.contours import GPb
    from bottomup.hierarchy.multiscale import combine_hierarchies, image_pyramid

    rng = np.random.default_rng(6)
    img = np.kron(rng.random((4, 5, 3)), np.ones((10, 10, 1)))
    img = np.clip(img + 0.01 * rng.standard_normal((40, 50, 3)), 0, 1)
    s = _scorer(rng)
    h = segment(img, GPb("fast", multiscale=True), arcs=s)
    levels = [segment(level, GPb("fast"), arcs=s) for level in image_pyramid(img, (1.0, 0.5))]
    manual = combine_hierarchies(levels, img.shape[:2], sigmoid=None, weights=(0.75, 0.25))
    np.testing.assert_array_equal(h.to_ucm2(), manual.to_ucm2())
    assert not np.array_equal(h.to_ucm2(), segment(img, GPb("fast", multiscale=True)).to_ucm2())



def test_cli_arcs_option(tmp_path):
    import json

    import cv2

    from bottomup.cli import main

    img = np.zeros((36, 44, 3))
    img[:, 22:] = [0.9, 0.6, 0.2]
    cv2.imwrite(str(tmp_path / "a.png"), (img[..., ::-1] * 255).round().astype(np.uint8))
    read = cv2.imread(str(tmp_path / "a.png"))[..., ::-1]
    for arcs in ("learned", "mean", "gpb"):
        out = tmp_path / arcs
        assert main(["segment", str(tmp_path / "a.png"), "--out", str(out), "--preset", "fast",
                     "--single-scale", "--arcs", arcs, "--format", "npz", "--quiet"]) == 0
        man = json.loads(next(out.glob("manifest-*.json")).read_text())
        # the manifest names the arc rule when it is not gPb's default
        assert man["params"].get("arcs", "mean") == arcs
        ref = segment(read, GPb("fast"), arcs=arcs).to_ucm2()
        np.testing.assert_array_equal(np.load(out / "a.npz")["ucm2"], ref)
