"""Proposal scores: hand-computed overlaps, leaf-set path == mask path, naive reference, errors."""

from __future__ import annotations

import numpy as np
import pytest

from bottomup.masks import masks_to_boxes, masks_to_rle, rle_to_boxes, xyxy_to_boxes
from bottomup.metrics.proposals import (
    ProposalParams,
    ProposalRecall,
    best_overlaps_boxes,
    best_overlaps_leaves,
    best_overlaps_masks,
    proposal_scores,
)


def _naive_best(gt, cands, ns, void=None):
    """Plain loops: best IoU over the first N candidates, on non-void pixels."""
    valid = np.ones(gt.shape[1:], bool) if void is None else ~void
    out = np.zeros((len(gt), len(ns)))
    for gi, g in enumerate(gt):
        for ni, n in enumerate(ns):
            best = 0.0
            for c in cands[:n]:
                inter = np.sum(g & c & valid)
                union = np.sum((g | c) & valid)
                if union > 0:
                    best = max(best, inter / union)
            out[gi, ni] = best
    return out


def _random_partition_case(rng, h=12, w=14, n_leaves=9, k=30, g=3):
    # random Voronoi-like partition with dense labels
    seeds = np.stack([rng.integers(0, h, n_leaves), rng.integers(0, w, n_leaves)], 1)
    rr, cc = np.mgrid[:h, :w]
    d = (rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2
    labels = np.argmin(d, axis=-1)
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(h, w)
    n = labels.max() + 1
    inc = rng.random((k, n)) < 0.3
    masks = inc[:, labels]
    gt = rng.random((g, h, w)) < 0.3
    gt[0] = labels == 0  # one object that is exactly a leaf
    return labels, inc, masks, gt


def test_hand_computed_masks():
    gt = np.zeros((2, 4, 4), bool)
    gt[0, :2, :2] = True  # 4 px
    gt[1, 2:, 2:] = True  # 4 px
    c = np.zeros((3, 4, 4), bool)
    c[0, :2, :] = True  # 8 px: IoU with gt0 = 4/8
    c[1, :2, :2] = True  # exactly gt0
    c[2, 2:, 3:] = True  # 2 px in gt1: IoU 2/4
    best = best_overlaps_masks(gt, c, [1, 2, 3, 10])
    assert best.tolist() == [[0.5, 1.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5]]
    # void over the right half: gt1 and c2 vanish; c0 becomes 4 px = gt0
    void = np.zeros((4, 4), bool)
    void[:, 2:] = True
    assert best_overlaps_masks(gt, c, [1, 3], void=void).tolist() == [[1.0, 1.0], [0.0, 0.0]]
    s = proposal_scores(best, ProposalParams(n_candidates=[1, 2, 3, 10]))
    assert s.abo.tolist() == [0.25, 0.5, 0.75, 0.75]
    assert s.recall.tolist() == [[0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 0.5], [0.0, 0.5, 0.5, 0.5]]


def test_class_jaccard_hand_computed():
    gt = np.zeros((2, 4, 4), bool)
    gt[0, :2, :2] = True
    gt[1, 2:, 2:] = True
    c = np.zeros((3, 4, 4), bool)
    c[0, :2, :] = True
    c[1, :2, :2] = True
    c[2, 2:, 3:] = True
    params = ProposalParams(n_candidates=[1, 3])
    same, apart = ProposalRecall(params), ProposalRecall(params)
    same.update_masks(gt, c, gt_labels=[0, 0])
    apart.update_masks(gt, c, gt_labels=[0, 1])
    # N=1: gt0 <- c0 (inter 4, union 8); gt1 <- c0 (inter 0, union 12)
    # N=3: gt0 <- c1 (4, 4); gt1 <- c2 (2, 4)
    assert same.compute().class_jaccard.tolist() == [4 / 20, 6 / 8]
    assert apart.compute().class_jaccard.tolist() == [(0.5 + 0) / 2, (1 + 0.5) / 2]
    nolab = ProposalRecall(params)
    nolab.update_masks(gt, c)
    assert np.isnan(nolab.compute().class_jaccard).all()


def test_hand_computed_boxes():
    gt = [[0, 0, 2, 2], [4, 4, 6, 6]]
    cands = [[0, 0, 2, 4], [0, 0, 2, 2], [4, 4, 6, 5]]
    best = best_overlaps_boxes(gt, cands, [1, 3])
    assert best.tolist() == [[0.5, 1.0], [0.0, 0.5]]


@pytest.mark.parametrize("seed", range(3))
def test_masks_match_naive_and_leaves_match_masks(seed):
    rng = np.random.default_rng(seed)
    labels, inc, masks, gt = _random_partition_case(rng)
    void = rng.random(labels.shape) < 0.1
    ns = [1, 5, 12, 100]
    ref = _naive_best(gt, masks, ns, void)
    np.testing.assert_allclose(best_overlaps_masks(gt, masks, ns, void=void), ref, atol=1e-12)
    np.testing.assert_allclose(
        best_overlaps_leaves(gt, labels, inc, ns, void=void), ref, atol=1e-12
    )
    as_lists = [np.flatnonzero(row) for row in inc]
    np.testing.assert_allclose(
        best_overlaps_leaves(gt, labels, as_lists, ns, void=void), ref, atol=1e-12
    )
    exact = np.zeros((1, inc.shape[1]), bool)
    exact[0, 0] = True  # a candidate that is exactly object 0 (leaf 0)
    best = best_overlaps_leaves(gt, labels, np.vstack([inc, exact]), [len(inc), len(inc) + 1])
    assert best[0, 1] == 1.0


def test_chunked_mask_path(monkeypatch):
    """Chunks smaller than the candidate count give the same answer."""
    import bottomup.metrics.proposals as prop

    rng = np.random.default_rng(5)
    _, _, masks, gt = _random_partition_case(rng, k=40)
    whole = best_overlaps_masks(gt, masks, [3, 40])
    monkeypatch.setattr(prop, "_CHUNK_BYTES", 3 * masks[0].size * 4)
    np.testing.assert_array_equal(best_overlaps_masks(gt, masks, [3, 40]), whole)


def test_boxes_match_naive():
    rng = np.random.default_rng(2)
    _, _, masks, gt = _random_partition_case(rng)
    # some candidate masks are empty: rle_to_boxes gives them (0, 0, 0, 0), masks_to_boxes refuses
    gb, cb = xyxy_to_boxes(masks_to_boxes(gt)), rle_to_boxes(masks_to_rle(masks))
    got = best_overlaps_boxes(gb, cb, [2, 30])
    box_masks = lambda boxes: np.stack(  # noqa: E731
        [
            np.pad(
                np.ones((b[2] - b[0], b[3] - b[1]), bool), ((b[0], 12 - b[2]), (b[1], 14 - b[3]))
            )
            for b in boxes
        ]
    )
    np.testing.assert_allclose(got, _naive_best(box_masks(gb), box_masks(cb), [2, 30]))


def test_accumulator_over_images():
    rng = np.random.default_rng(3)
    params = ProposalParams(n_candidates=[1, 10], iou_thresholds=[0.5, 0.7])
    m = ProposalRecall(params)
    m_masks, m_leaves = ProposalRecall(params), ProposalRecall(params)
    rows = []
    for _ in range(3):
        labels, inc, masks, gt = _random_partition_case(rng, g=int(rng.integers(1, 4)))
        m.update_leaves(gt, labels, inc)
        rows.append(_naive_best(gt, masks, [1, 10]))
        m_masks.update_masks(gt, masks, gt_labels=np.arange(len(gt)) % 2)
        m_leaves.update_leaves(gt, labels, inc, gt_labels=np.arange(len(gt)) % 2)
    np.testing.assert_allclose(m_masks.compute().class_jaccard, m_leaves.compute().class_jaccard)
    assert np.isfinite(m_masks.compute().class_jaccard).all()
    s = m.compute()
    allrows = np.concatenate(rows)
    assert s.n_objects == len(allrows)
    np.testing.assert_allclose(s.abo, allrows.mean(0))  # mean over objects, not over images
    np.testing.assert_allclose(s.recall, [(allrows >= 0.5).mean(0), (allrows >= 0.7).mean(0)])


def test_empty_inputs():
    gt = np.ones((2, 3, 3), bool)
    none = np.zeros((0, 3, 3), bool)
    assert best_overlaps_masks(gt, none, [1, 5]).tolist() == [[0, 0], [0, 0]]
    assert best_overlaps_masks(none, gt, [1, 5]).shape == (0, 2)
    labels = np.zeros((3, 3), int)
    assert best_overlaps_leaves(gt, labels, np.zeros((0, 1), bool), [4]).shape == (2, 1)
    assert best_overlaps_leaves(gt, labels, [], [4]).tolist() == [[0.0], [0.0]]
    assert best_overlaps_boxes(np.zeros((0, 4)), [[0, 0, 1, 1]], [1]).shape == (0, 1)
    assert best_overlaps_boxes([[0, 0, 1, 1]], np.zeros((0, 4)), [1]).tolist() == [[0.0]]
    m = ProposalRecall(ProposalParams(n_candidates=[1, 2]))
    s = m.compute()
    assert s.abo.shape == (2,) and np.isnan(s.abo).all()
    assert s.recall.shape == (3, 2) and np.isnan(s.recall).all()
    m.update_masks(none, none)
    assert m.compute().n_objects == 0


def test_errors():
    gt = np.ones((1, 3, 3), bool)
    with pytest.raises(ValueError, match=r"`candidate_masks` masks \(shape \(4, 3\)\)"):
        best_overlaps_masks(gt, np.ones((1, 4, 3), bool), [1])
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        best_overlaps_masks(gt[0], gt, [1])
    with pytest.raises(ValueError, match="n_candidates"):
        best_overlaps_masks(gt, gt, [0])
    with pytest.raises(ValueError, match="n_candidates"):
        ProposalParams(n_candidates=[1.5])
    with pytest.raises(ValueError, match="iou_thresholds"):
        ProposalParams(iou_thresholds=[0.0])
    with pytest.raises(ValueError, match="`void`"):
        best_overlaps_masks(gt, gt, [1], void=np.zeros((2, 2), bool))
    labels = np.array([[0, 1, 1]] * 3)
    with pytest.raises(ValueError, match="one column per leaf"):
        best_overlaps_leaves(gt, labels, np.ones((1, 1), bool), [1])
    with pytest.raises(ValueError, match="outside 0..1"):
        best_overlaps_leaves(gt, labels, [np.array([2])], [1])
    with pytest.raises(TypeError, match="bool"):
        best_overlaps_leaves(gt, labels, np.ones((1, 2), int), [1])
    with pytest.raises(ValueError, match=r"`partition` \(shape"):
        best_overlaps_leaves(gt, labels[:2], [np.array([0])], [1])
    with pytest.raises(ValueError, match="gt_labels"):
        ProposalRecall().update_masks(gt, gt, gt_labels=[0, 1])
    with pytest.raises(ValueError, match="gt_boxes"):
        best_overlaps_boxes([[0, 0, 1]], [[0, 0, 1, 1]], [1])
    with pytest.raises(ValueError, match="candidate_boxes"):
        best_overlaps_boxes([[0, 0, 1, 1]], [[1, 0, 0, 1]], [1])
    with pytest.raises(ValueError, match="best_overlaps"):
        proposal_scores(np.zeros((3, 2)), ProposalParams(n_candidates=[1]))
