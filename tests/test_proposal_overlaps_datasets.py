"""overlaps_leaves (candidates x objects IoU) and the dataset layouts of the proposal benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from bottomup.io.datasets import MSRC_THINGS, proposal_objects, split_images
from bottomup.metrics.proposals import best_overlaps_leaves, overlaps_leaves


def _naive(gt, labels, leaf_sets, void):
    """Plain loops over materialised masks, on non-void pixels."""
    valid = np.ones(labels.shape, bool) if void is None else ~void
    out = np.zeros((len(leaf_sets), len(gt)))
    for k, s in enumerate(leaf_sets):
        c = np.isin(labels, np.flatnonzero(s))
        for g, m in enumerate(gt):
            union = np.sum((c | m) & valid)
            out[k, g] = np.sum(c & m & valid) / union if union else 0.0
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlaps_leaves_against_naive_masks(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, size=(9, 11))
    gt = rng.random((3, 9, 11)) < 0.4
    sets = rng.random((12, 8)) < 0.35  # one more column than labels: a leaf without pixels
    sets[0] = False  # an empty candidate: union may be empty where the object is void
    void = rng.random((9, 11)) < 0.2
    for v in (None, void):
        got = overlaps_leaves(gt, labels, sets, void=v)
        np.testing.assert_allclose(got, _naive(gt, labels, sets, v), rtol=0, atol=1e-15)
        # its column maxima are the best overlaps over all candidates
        best = best_overlaps_leaves(gt, labels, sets, [12], void=v)[:, 0]
        np.testing.assert_array_equal(got.max(axis=0), best)


def test_overlaps_leaves_hand_case_and_errors():
    part = np.array([[0, 0, 1, 1]])
    gt = np.array([[[True, True, True, False]], [[False, False, False, False]]])
    iou = overlaps_leaves(gt, part, np.array([[True, False], [True, True], [False, False]]))
    np.testing.assert_array_equal(iou, [[2 / 3, 0], [3 / 4, 0], [0, 0]])
    assert overlaps_leaves(np.zeros((0, 1, 4), bool), part, np.ones((2, 2), bool)).shape == (2, 0)
    with pytest.raises(ValueError, match="`leaf_sets`"):
        overlaps_leaves(gt, part, np.ones((2, 1), bool))  # fewer columns than leaves
    with pytest.raises(ValueError, match="`void`"):
        overlaps_leaves(gt, part, np.ones((2, 2), bool), void=np.zeros((2, 2), bool))


def _bsds(tmp_path):
    import scipy.io as sio
    from PIL import Image

    root = tmp_path / "bsds500"
    for sub in ("images", "groundTruth"):
        (root / "data" / sub / "val").mkdir(parents=True)
    for iid in ("2", "10"):
        Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(root / "data" / "images" / "val" / f"{iid}.jpg")
    # annotator 1: regions 1 (all but 1 pixel), 2 (one pixel: 1/2000 < 0.1 %); annotator 2: halves
    a = np.ones((40, 50), np.uint16)
    a[0, 0] = 2
    b = np.ones((40, 50), np.uint16)
    b[:, 25:] = 2
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0] = {"Segmentation": a, "Boundaries": np.zeros_like(a, np.uint8)}
    cell[0, 1] = {"Segmentation": b, "Boundaries": np.zeros_like(b, np.uint8)}
    sio.savemat(root / "data" / "groundTruth" / "val" / "2.mat", {"groundTruth": cell})
    return root, a, b


def test_bsds_layout(tmp_path):
    root, a, b = _bsds(tmp_path)
    items = split_images("bsds", root, "val")
    assert [n for n, _ in items] == ["10", "2"]  # sorted ids, as the files sort
    assert items[1][1] == root / "data" / "images" / "val" / "2.jpg"
    masks, void = proposal_objects("bsds", root, "val", "2")
    assert void is None
    # the one-pixel segment (under 0.1 % of the image) is left out; the others are kept in order
    expected = [a == 1, b == 1, b == 2]
    assert masks.shape == (3, 40, 50) and masks.dtype == bool
    for m, e in zip(masks, expected, strict=True):
        np.testing.assert_array_equal(m, e)


def test_msrc_layout(tmp_path):
    import scipy.io as sio

    root = tmp_path / "msrc"
    (root / "groundTruth").mkdir(parents=True)
    (root / "val.txt").write_text("b_img\na_img\n")
    seg = np.zeros((4, 6), np.uint8)  # 0: void (outside every segment)
    seg[:, :2] = 1  # class 1 building: stuff
    seg[:, 2:4] = 2  # class 4 cow: thing
    seg[:2, 4:] = 3  # class 20 cat: thing
    seg[2:, 4:] = 4  # past the end of newlabels: void
    sio.savemat(root / "groundTruth" / "b_img_GT.mat", {"newseg": seg, "newlabels": np.array([[1, 4, 20]])})
    items = split_images("msrc", root, "val")
    assert items == [("b_img", root / "images" / "b_img.png"), ("a_img", root / "images" / "a_img.png")]
    masks, void = proposal_objects("msrc", root, "val", "b_img")
    assert 4 in MSRC_THINGS and 20 in MSRC_THINGS and 1 not in MSRC_THINGS
    np.testing.assert_array_equal(masks, np.stack([seg == 2, seg == 3]))
    np.testing.assert_array_equal(void, (seg == 0) | (seg == 4))


def test_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="`dataset`"):
        split_images("voc", tmp_path, "val")
    with pytest.raises(ValueError, match="`dataset`"):
        proposal_objects("coco", tmp_path, "val", "x")
    with pytest.raises(FileNotFoundError, match="val.txt"):
        split_images("msrc", tmp_path, "val")
