"""BSDS boundary benchmark: thinning, the matcher, per-image counts and dataset figures."""

import math

import numpy as np
import pytest

from bottomup.metrics.boundary import (
    BoundaryParams,
    boundary_counts,
    bsds_thresholds,
    collect_boundaries,
    match_boundaries,
    thin,
)
from tests.naive_metrics import optimal_match_cost


def square(n=100, r0=30, r1=70):
    b = np.zeros((n, n), bool)
    b[r0, r0:r1 + 1] = b[r1, r0:r1 + 1] = True
    b[r0:r1 + 1, r0] = b[r0:r1 + 1, r1] = True
    return b


def test_thresholds_are_matlab_linspace():
    t = bsds_thresholds(99)
    assert t[0] == 0.01 and t[-1] == 0.99 and len(t) == 99
    assert t[5] == 0.01 + 5 * (0.98 / 98)  # 0.060000000000000005, as MATLAB
    assert bsds_thresholds(1).tolist() == [0.5]


def test_thin_matches_skimage():
    skm = pytest.importorskip("skimage.morphology")
    rng = np.random.default_rng(0)
    for _ in range(20):
        img = rng.random((40, 50)) < 0.45
        img = np.asarray(__import__("scipy.ndimage", fromlist=["x"]).binary_closing(img))
        np.testing.assert_array_equal(thin(img), skm.thin(img))
    thick = np.zeros((20, 30), bool)
    thick[5:12, 3:27] = True
    out = thin(thick)
    np.testing.assert_array_equal(out, skm.thin(thick))
    assert out.sum() < thick.sum() and out.any()


def test_square_against_itself_and_shifted():
    sq = square()  # diagonal 141.4 -> max distance 1.06 px
    n = int(sq.sum())
    m1, m2, pairs = match_boundaries(sq, sq)
    assert len(pairs) == n and m1.sum() == n and m2.sum() == n
    assert (pairs[:, :2] == pairs[:, 2:]).all()  # every pixel to itself (cost 0)
    shifted = np.roll(sq, 1, axis=1)
    _, _, pairs = match_boundaries(sq, shifted)
    assert len(pairs) == n  # one pixel away: everyone matched
    # a straight segment against copies shifted by one and by three pixels (max distance 1.06)
    line = np.zeros((100, 100), bool)
    line[40, 20:80] = True
    _, _, pairs = match_boundaries(line, np.roll(line, 1, axis=0))
    assert len(pairs) == 60 and (np.abs(pairs[:, 0] - pairs[:, 2]) == 1).all()
    m1, m2, pairs = match_boundaries(line, np.roll(line, 3, axis=0))
    assert len(pairs) == 0 and not m1.any() and not m2.any()
    # shifted by 3 along itself: the 57 overlapping pixels coincide, the ends stay unmatched
    _, _, pairs = match_boundaries(line, np.roll(line, 3, axis=1))
    assert len(pairs) == 58  # 57 coincident + one end pixel one step away


def test_empty_and_one_sided_maps():
    z = np.zeros((30, 30), bool)
    m1, m2, pairs = match_boundaries(z, z)
    assert pairs.shape == (0, 4) and not m1.any() and not m2.any()
    _, _, pairs = match_boundaries(square(30, 5, 20), z)
    assert len(pairs) == 0
    c = boundary_counts(np.zeros((30, 30)), [z])
    assert (c == 0).all()
    fig = collect_boundaries([c])
    assert fig["ods"] == 0 and fig["ois"] == 0 and fig["ap"] == 0


def test_counts_one_annotator_hand_computed():
    sq = square()
    n = sq.sum()
    # thinning removes the four corner pixels of the outline (8-connected curve stays closed)
    assert thin(sq).sum() == n - 4
    c = boundary_counts(sq * 0.5, [sq])
    t = bsds_thresholds()
    below = t <= 0.5
    m = n - 4
    np.testing.assert_array_equal(c[below], np.tile([m, n, m, m], (below.sum(), 1)))
    np.testing.assert_array_equal(c[~below], np.tile([0, n, 0, 0], ((~below).sum(), 1)))
    fig = collect_boundaries([c])
    assert fig["ods"] == pytest.approx(2 * (m / n) / (1 + m / n))
    c = boundary_counts(sq * 0.5, [sq], BoundaryParams(thin=False))
    np.testing.assert_array_equal(c[0], [n, n, n, n])


def test_machine_pixel_counts_if_it_matches_any_annotator():
    a = np.zeros((40, 40), bool)
    a[10, 5:35] = True
    b = np.zeros((40, 40), bool)
    b[30, 5:35] = True
    pb = (a | b).astype(float)
    c = boundary_counts(pb, [a, b])[0]
    assert c.tolist() == [60, 60, 60, 60]
    c = boundary_counts(a.astype(float), [a, b])[0]
    assert c.tolist() == [30, 60, 30, 30]  # recall halves, precision stays 1


@pytest.mark.parametrize("seed", range(12))
def test_matcher_is_optimal_against_dense_assignment(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(8, 16, size=2)
    a = rng.random((h, w)) < rng.uniform(0.05, 0.35)
    b = rng.random((h, w)) < rng.uniform(0.05, 0.35)
    max_frac = rng.choice([0.05, 0.1, 0.2])
    max_px = max_frac * math.hypot(h, w)
    _, _, pairs = match_boundaries(a, b, max_dist=max_frac)
    k_ref, total_ref = optimal_match_cost(a, b, max_px, int(math.ceil(100 * max_px * 100)))
    d = np.sqrt(((pairs[:, :2] - pairs[:, 2:]) ** 2).sum(1))
    assert (d <= max_px + 1e-9).all()
    assert a[pairs[:, 0], pairs[:, 1]].all() and b[pairs[:, 2], pairs[:, 3]].all()
    assert len(np.unique(pairs[:, :2], axis=0)) == len(pairs)  # one-to-one
    assert len(np.unique(pairs[:, 2:], axis=0)) == len(pairs)
    assert len(pairs) == k_ref
    assert int(np.rint(d * 100).sum()) == total_ref


def test_matcher_prefers_more_pairs_then_shorter():
    # left pixel a0 close to b0; a1 only reaches b0. Max cardinality: a0-b1? build by hand.
    a = np.zeros((10, 40), bool)
    b = np.zeros((10, 40), bool)
    a[5, 10] = a[5, 12] = True
    b[5, 11] = True
    b[5, 9] = True
    _, _, pairs = match_boundaries(a, b, max_dist=1.5 / math.hypot(10, 40))
    assert len(pairs) == 2  # a(5,10)-b(5,9) and a(5,12)-b(5,11)


def test_collect_hand_computed():
    # two images, three thresholds
    c1 = np.array([[8, 10, 8, 16], [6, 10, 6, 8], [2, 10, 2, 2]])
    c2 = np.array([[4, 10, 4, 4], [4, 10, 4, 4], [0, 10, 0, 0]])
    fig = collect_boundaries([c1, c2], thresholds=[0.25, 0.5, 0.75])
    r = np.array([12, 10, 2]) / 20
    p = np.array([12 / 20, 10 / 12, 1.0])
    np.testing.assert_allclose(fig["curve"]["R"], r)
    np.testing.assert_allclose(fig["curve"]["P"], p)
    f = 2 * p * r / (p + r)
    assert fig["ods"] >= f.max() - 1e-12  # interpolation can only find a better point
    # OIS: image 1 best F at t=0.5 (F=0.6667 vs 0.615, 0.333); image 2 first best at t=0.25
    ois_r, ois_p = (6 + 4) / 20, (6 + 4) / (8 + 4)
    assert fig["ois"] == pytest.approx(2 * ois_r * ois_p / (ois_r + ois_p))
    # AP: interpolate P at R = 0..1 step .01 within [0.1, 0.6], 0 outside
    ri = np.linspace(0, 1, 101)
    order = np.argsort(r)
    pi = np.interp(ri, r[order], p[order], left=0, right=0)
    pi[(ri < r.min()) | (ri > r.max())] = 0
    assert fig["ap"] == pytest.approx(pi.sum() * 0.01)
    assert fig["r50"] == pytest.approx(0.6)


def test_bad_input():
    with pytest.raises(ValueError, match="must agree"):
        boundary_counts(np.zeros((5, 5)), [np.zeros((5, 6), bool)])
    with pytest.raises(ValueError, match="NaN"):
        boundary_counts(np.full((5, 5), np.nan), [np.zeros((5, 5), bool)])
    with pytest.raises(ValueError, match="empty"):
        boundary_counts(np.zeros((5, 5)), [])
    with pytest.raises(ValueError, match="must agree"):
        match_boundaries(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="n_thresholds"):
        BoundaryParams(n_thresholds=0)


@pytest.mark.slow
def test_reference_counts_on_five_val_images(bsds_root, reference_dir):
    import json

    from bottomup.io import read_bsds_gt, read_ucm2

    ref = json.loads((reference_dir / "bsds500_val_gpb-owt-ucm.json").read_text())
    for iid, counts in ref["per_image_counts"].items():
        u = read_ucm2(bsds_root / f"ucm2/val/{iid}.mat")
        gt = read_bsds_gt(bsds_root / f"data/groundTruth/val/{iid}.mat")
        c = boundary_counts(u[2::2, 2::2], gt.boundaries)
        b = counts["boundary"]
        r = np.array([b["cntR"], b["sumR"], b["cntP"], b["sumP"]]).T
        np.testing.assert_array_equal(c[:, 1], r[:, 1])  # thinning and GT pixel counts exact
        np.testing.assert_array_equal(c[:, 3], r[:, 3])
        rel = np.abs(c - r) / np.maximum(r, 1)
        assert rel.max() < 0.005, (iid, rel.max(axis=0))
