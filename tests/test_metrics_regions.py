"""BSDS region benchmark: Covering, PRI and VI against hand-computed and naive references."""

import numpy as np
import pytest

from bottomup.metrics.regions import (
    collect_regions,
    covering,
    rand_index,
    region_counts,
    segmentation_counts,
    variation_of_information,
)
from tests.naive_metrics import flat_stats_naive, region_stats_naive


def test_hand_computed_two_by_two():
    seg = np.array([[0, 0, 1, 1]])
    gt = np.array([[0, 0, 0, 0]])
    assert variation_of_information(seg, gt) == pytest.approx(1.0)
    assert rand_index(seg, gt) == pytest.approx(2 / 6)
    assert covering(seg, [gt]) == pytest.approx(0.5)
    assert covering(gt, [seg]) == pytest.approx(0.5)
    assert variation_of_information(seg, seg) == pytest.approx(0.0, abs=1e-12)
    assert rand_index(seg, seg) == 1.0
    assert covering(seg, [seg, seg]) == 1.0


def test_vi_against_skimage():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    for _ in range(5):
        a = rng.integers(0, 4, (12, 9))
        b = rng.integers(0, 3, (12, 9))
        assert variation_of_information(a, b) == pytest.approx(sum(skm.variation_of_information(a, b)))


def test_flat_against_naive():
    rng = np.random.default_rng(4)
    seg = rng.integers(0, 5, (9, 11))
    gts = [rng.integers(0, 3, (9, 11)), rng.integers(0, 4, (9, 11))]
    rc = segmentation_counts(seg, gts)
    ref = flat_stats_naive(seg, gts)
    np.testing.assert_allclose(rc.counts[0], ref[:4])
    assert rc.ri[0] == pytest.approx(ref[4])
    assert rc.vi[0] == pytest.approx(ref[5])


def random_ucm2(rng, h, w):
    """A ucm2-like map: random edge strengths on the double grid, vertices as max of neighbours."""
    u = np.zeros((2 * h + 1, 2 * w + 1))
    u[1::2, 2:-1:2] = rng.choice([0.1, 0.3, 0.6, 0.9], size=(h, w - 1))
    u[2:-1:2, 1::2] = rng.choice([0.1, 0.3, 0.6, 0.9], size=(h - 1, w))
    for r in range(0, 2 * h + 1, 2):
        for c in range(0, 2 * w + 1, 2):
            nb = [u[rr, cc] for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                  if 0 <= rr < 2 * h + 1 and 0 <= cc < 2 * w + 1]
            u[r, c] = max(nb)
    return u


@pytest.mark.parametrize("seed", range(4))
def test_ucm2_cuts_against_naive(seed):
    rng = np.random.default_rng(seed)
    h, w = 7, 9
    u = random_ucm2(rng, h, w)
    gts = [rng.integers(0, 3, (h, w)), rng.integers(0, 2, (h, w))]
    t = np.array([0.05, 0.2, 0.4, 0.7, 0.95])
    rc = region_counts(u, gts, t)
    ref = region_stats_naive(u, gts, t)
    for k in range(len(t)):
        np.testing.assert_allclose(rc.counts[k], ref[k][:4], rtol=1e-12)
        assert rc.ri[k] == pytest.approx(ref[k][4])
        assert rc.vi[k] == pytest.approx(ref[k][5])


def test_collect_rules():
    from bottomup.metrics.regions import RegionCounts

    t = np.array([0.2, 0.4, 0.6])
    a = RegionCounts(t, np.array([[2, 10, 0, 5], [6, 10, 0, 5], [6, 10, 0, 5]], float),
                     np.array([0.5, 0.8, 0.8]), np.array([3.0, 1.0, 1.0]), 7.0)
    b = RegionCounts(t, np.array([[4, 10, 0, 5], [4, 10, 0, 5], [2, 10, 0, 5]], float),
                     np.array([0.9, 0.7, 0.6]), np.array([1.0, 2.0, 0.5]), 5.0)
    fig = collect_regions([a, b])
    assert fig["covering_ods"] == pytest.approx(10 / 20)
    # OIS uses each image's LAST best threshold (a: t=0.6, b: t=0.4)
    assert fig["covering_ois"] == pytest.approx((6 + 4) / 20)
    assert fig["covering_best"] == pytest.approx(12 / 20)
    assert fig["pri_ods"] == pytest.approx(0.75) and fig["pri_ods_threshold"] == 0.4
    assert fig["pri_ois"] == pytest.approx((0.8 + 0.9) / 2)
    assert fig["vi_ods"] == pytest.approx(0.75) and fig["vi_ods_threshold"] == 0.6
    assert fig["vi_ois"] == pytest.approx((1.0 + 0.5) / 2)


def test_bad_input():
    with pytest.raises(ValueError, match="image shape"):
        region_counts(np.zeros((5, 7)), [np.zeros((3, 3), int)])
    with pytest.raises(ValueError, match="double-size"):
        region_counts(np.zeros((4, 7)), [np.zeros((2, 3), int)])
    with pytest.raises(TypeError, match="integer"):
        segmentation_counts(np.zeros((2, 2)), [np.zeros((2, 2), int)])
    with pytest.raises(ValueError, match="empty"):
        segmentation_counts(np.zeros((2, 2), int), [])


@pytest.mark.slow
def test_reference_region_counts(bsds_root, reference_dir):
    import json

    from bottomup.io import read_bsds_gt, read_ucm2

    ref = json.loads((reference_dir / "bsds500_val_gpb-owt-ucm.json").read_text())
    for iid, counts in ref["per_image_counts"].items():
        u = read_ucm2(bsds_root / f"ucm2/val/{iid}.mat")
        gt = read_bsds_gt(bsds_root / f"data/groundTruth/val/{iid}.mat")
        rc = region_counts(u, gt.segmentations)
        r = counts["region"]
        np.testing.assert_allclose(rc.counts, np.array([r["cntR"], r["sumR"], r["cntP"], r["sumP"]]).T,
                                   rtol=1e-9)
        np.testing.assert_allclose(rc.ri, r["sumRI"], rtol=1e-9)
        np.testing.assert_allclose(rc.vi, r["sumVOI"], rtol=1e-9)
        assert rc.cnt_r_best == pytest.approx(r["cntR_best"], rel=1e-9)
