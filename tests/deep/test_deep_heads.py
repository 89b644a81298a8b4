"""Region scorer, mask refiner, data layout and the deep.segment pipeline (issue #7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deep.data import SegmentationDataset, msrc_instances, write_categories, write_sample
from deep.refine import MaskRefiner, expand_boxes, grid_weights, mask_nms, paste_masks
from deep.scoring import (
    N_GEOMETRY,
    PixelClassifier,
    RegionScorer,
    candidate_targets,
    dense_hypercolumns,
    region_descriptors,
)


def _toy_candidates(rng, h=13, w=17, n_leaves=6, k=5):
    lab = rng.integers(0, n_leaves, size=(h, w)).astype(np.int32)
    lab[0, :n_leaves] = np.arange(n_leaves)  # every leaf present
    sets = rng.random((k, n_leaves)) < 0.5
    sets[:, 0] |= ~sets.any(1)
    masks = sets[:, lab]
    boxes = []
    for m in masks:
        r, c = np.nonzero(m)
        boxes.append([r.min(), c.min(), r.max() + 1, c.max() + 1])
    return lab, sets, np.array(boxes), rng.random(k)


def _naive_descriptors(dense, lab, sets, boxes, scores, stride=2):
    c = dense.shape[1]
    H, W = lab.shape
    grid = lab[::stride, ::stride]
    out = []
    for s, b, sc in zip(sets, boxes, scores, strict=False):
        m = s[grid]
        inside = dense[0][:, torch.from_numpy(m)].mean(1) if m.any() else torch.zeros(c)
        box = np.zeros_like(m)
        r0, c0 = b[0] // stride, b[1] // stride
        r1, c1 = -(-b[2] // stride), -(-b[3] // stride)
        box[r0:r1, c0:c1] = True
        ctx = box & ~m
        context = dense[0][:, torch.from_numpy(ctx)].mean(1) if ctx.any() else torch.zeros(c)
        area = s[lab].sum()
        barea = (b[2] - b[0]) * (b[3] - b[1])
        geo = torch.tensor([area / (H * W), barea / (H * W), area / barea, b[0] / H, b[1] / W,
                            b[2] / H, b[3] / W, np.log(area) / np.log(H * W), sc], dtype=torch.float64)
        out.append(torch.cat([inside.double(), context.double(), geo]))
    return torch.stack(out)


def test_region_descriptors_match_naive_pooling():
    rng = np.random.default_rng(0)
    lab, sets, boxes, scores = _toy_candidates(rng)
    dense = torch.randn(1, 4, 7, 9, dtype=torch.float64)
    d = region_descriptors(dense, lab, sets, boxes, scores)
    assert d.shape == (5, 2 * 4 + N_GEOMETRY)
    torch.testing.assert_close(d, _naive_descriptors(dense, lab, sets, boxes, scores))


def test_region_descriptors_empty_and_bad_input():
    lab = np.zeros((4, 4), np.int32)
    dense = torch.zeros(1, 3, 2, 2)
    assert region_descriptors(dense, lab, np.zeros((0, 1), bool), np.zeros((0, 4)), []).shape == (0, 6 + 9)
    with pytest.raises(ValueError, match="leaf_sets"):
        region_descriptors(dense, lab, np.zeros((2, 3), bool), np.zeros((2, 4)), [0, 0])
    with pytest.raises(ValueError, match="stride-2 grid"):
        region_descriptors(torch.zeros(1, 3, 3, 3), lab, np.ones((1, 1), bool), [[0, 0, 4, 4]], [1])


def test_dense_hypercolumns_grid_size():
    levels = [torch.randn(1, 2, 4, 5), torch.randn(1, 3, 2, 3)]
    assert dense_hypercolumns(levels, (15, 17)).shape == (1, 5, 8, 9)


def test_candidate_targets_hand_case():
    labels = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [255, 255, 1, 1]], np.uint8)
    gt = np.stack([labels == 0, labels == 1])
    cands = np.stack([labels == 0,                       # exact instance 0
                      np.ones_like(labels, bool),          # everything: IoU 6/10 with inst 1
                      np.zeros_like(labels, bool)])        # empty
    cls, ov, hist, best = candidate_targets(cands, gt, [0, 1], labels, n_classes=2)
    assert cls.tolist() == [0, 1, 2]
    np.testing.assert_allclose(ov, [1.0, 0.6, 0.0])
    np.testing.assert_allclose(hist, [[1, 0], [0.4, 0.6], [0, 0]])
    assert best.tolist() == [0, 1, -1]


def test_pixel_classifier_dense_equals_samples():
    torch.manual_seed(0)
    m = PixelClassifier(6, 3, hidden=8)
    m.set_normalisation(torch.randn(50, 6) * 3 + 1)
    x = torch.randn(2, 6, 4, 5)
    dense = m(x)
    flat = m(x.movedim(1, -1).reshape(-1, 6)).reshape(2, 4, 5, 3).movedim(-1, 1)
    torch.testing.assert_close(dense, flat)
    with pytest.raises(ValueError):
        m(torch.randn(1, 5, 4, 4))


def test_region_scorer_outputs():
    s = RegionScorer(11, 4, hidden=16).eval()
    cls, iou, hist = s(torch.randn(7, 11))
    assert cls.shape == (7, 5) and iou.shape == (7,) and hist.shape == (7, 4)
    assert bool(((iou >= 0) & (iou <= 1)).all())
    with pytest.raises(ValueError):
        s(torch.randn(7, 10))


def test_grid_weights_partition_of_unity_and_corners():
    w = grid_weights(3, 12)
    assert w.shape == (9, 12, 12)
    torch.testing.assert_close(w.sum(0), torch.ones(12, 12))
    assert float(w[0, 0, 0]) == 1.0 and float(w[8, -1, -1]) == 1.0
    torch.testing.assert_close(grid_weights(1, 5), torch.ones(1, 5, 5))


def test_paste_masks_places_window_in_box():
    probs = torch.ones(1, 4, 4)
    out = paste_masks(probs, torch.tensor([[2.0, 1.0, 6.0, 4.0]]), (6, 8))
    expect = torch.zeros(6, 8)
    expect[1:4, 2:6] = 1.0  # pixel centres y+0.5 in [1, 4], x+0.5 in [2, 6]
    torch.testing.assert_close(out[0], expect)
    # a left/right ramp keeps its orientation
    ramp = torch.linspace(0, 1, 4).repeat(4, 1)[None]
    out = paste_masks(ramp, torch.tensor([[0.0, 0.0, 8.0, 6.0]]), (6, 8))[0]
    assert bool((out[:, 1:] >= out[:, :-1]).all()) and out[0, 0] < out[0, -1]


def test_expand_boxes_clips():
    b = expand_boxes(torch.tensor([[0.0, 2.0, 10.0, 12.0]]), (14, 11), factor=0.1)
    torch.testing.assert_close(b, torch.tensor([[0.0, 1.0, 11.0, 13.0]]))


def test_mask_nms_is_per_class():
    m = np.zeros((3, 4, 4), bool)
    m[:, :2] = True
    keep = mask_nms(m, np.array([0.5, 0.9, 0.7]), np.array([1, 1, 2]))
    assert keep.tolist() == [1, 2]


def test_mask_refiner_shapes_and_gradient():
    torch.manual_seed(0)
    ref = MaskRefiner([3, 5], grid=2, size=8, hidden=4)
    levels = [torch.randn(1, 3, 6, 8), torch.randn(1, 5, 3, 4)]
    boxes = torch.tensor([[1.0, 2.0, 20.0, 15.0], [0.0, 0.0, 32.0, 24.0]])
    masks = torch.zeros(2, 24, 32, dtype=torch.bool)
    masks[:, 5:10, 5:12] = True
    out = ref(levels, boxes, masks, (24, 32))
    assert out.shape == (2, 8, 8)
    out.sum().backward()
    assert ref.proj[0].weight.grad is not None
    assert ref(levels, torch.zeros(0, 4), masks[:0], (24, 32)).shape == (0, 8, 8)
    with pytest.raises(ValueError, match="feature levels"):
        ref(levels[:1], boxes, masks, (24, 32))


def test_layout_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.random((5, 7, 3))
    lab = np.full((5, 7), 255, np.uint8)
    lab[:2] = 0
    lab[3:, 1:4] = 2
    masks = np.stack([lab == 0, lab == 2])
    write_sample(tmp_path, "x", img, lab, masks, [0, 2])
    write_sample(tmp_path, "y", img, np.zeros((5, 7), np.uint8), np.zeros((0, 5, 7), bool), [])
    write_categories(tmp_path, ["sky", "dog", "cat"], things=[1, 2])
    (tmp_path / "train.txt").write_text("x\ny\n")
    ds = SegmentationDataset(tmp_path, "train")
    assert ds.classes == ("sky", "dog", "cat") and ds.things == (1, 2)
    s = ds[0]
    np.testing.assert_array_equal(s.labels, lab)
    np.testing.assert_array_equal(s.masks, masks)
    assert s.classes.tolist() == [0, 2]
    np.testing.assert_allclose(s.image, np.round(img * 255) / 255)
    assert ds[1].masks.shape == (0, 5, 7)
    with pytest.raises(FileNotFoundError, match="split list"):
        SegmentationDataset(tmp_path, "test")


def test_msrc_instances(msrc_root):
    name = (msrc_root / "val.txt").read_text().split()[0]
    labels, masks, classes = msrc_instances(msrc_root / "groundTruth" / f"{name}_GT.mat")
    assert masks.shape[1:] == labels.shape and len(classes) == len(masks) >= 1
    for m, c in zip(masks, classes, strict=False):
        assert (labels[m] == c).all()
    assert not (masks.sum(0) > 1).any()  # segments do not overlap
