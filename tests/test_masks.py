"""COCO RLE and box helpers: hand-computed cases, then pycocotools as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bottomup.masks import (
    box_iou,
    boxes_to_coco,
    boxes_to_xyxy,
    coco_to_boxes,
    labels_to_boxes,
    masks_to_boxes,
    masks_to_rle,
    rle_area,
    rle_counts_to_string,
    rle_iou,
    rle_string_to_counts,
    rle_to_boxes,
    rle_to_masks,
    union_boxes,
    xyxy_to_boxes,
)


def _random_masks(rng, k, h, w):
    """Blobby and noisy masks, some empty, some full."""
    m = np.zeros((k, h, w), bool)
    for i in range(k):
        kind = i % 4
        if kind == 0:
            m[i] = rng.random((h, w)) < rng.random()
        elif kind == 1:
            r0, c0 = rng.integers(0, h), rng.integers(0, w)
            m[i, r0 : r0 + rng.integers(1, h + 1), c0 : c0 + rng.integers(1, w + 1)] = True
        elif kind == 2 and i % 8 == 2:
            m[i] = True
    return m


# ------------------------------------------------------------------ hand-computed


def test_encode_hand_computed():
    # column-major: col0 = [0, 0, 1], col1 = [1, 1, 0] -> 0 0 1 1 1 0 -> counts [2, 3, 1]
    m = np.array([[0, 1], [0, 1], [1, 0]], bool)
    assert masks_to_rle(m, compressed=False) == {"size": [3, 2], "counts": [2, 3, 1]}
    # first pixel foreground -> leading zero count
    m = np.array([[1, 1, 0]], bool)
    assert masks_to_rle(m, compressed=False)["counts"] == [0, 2, 1]
    assert masks_to_rle(np.zeros((2, 2)), compressed=False)["counts"] == [4]


def test_decode_area_box_hand_computed():
    rle = {"size": [3, 2], "counts": [2, 3, 1]}
    assert rle_to_masks(rle).astype(int).tolist() == [[0, 1], [0, 1], [1, 0]]
    assert rle_area(rle) == 3
    assert rle_to_boxes(rle).tolist() == [0, 0, 3, 2]
    assert masks_to_boxes(rle_to_masks(rle)).tolist() == [0, 0, 1, 2]  # xyxy, inclusive
    assert xyxy_to_boxes(masks_to_boxes(rle_to_masks(rle))).tolist() == [0, 0, 3, 2]


def test_compress_round_trip_and_negative_deltas():
    counts = [0, 5, 100000, 3, 1, 1, 70000, 2, 0]
    s = rle_counts_to_string(counts)
    assert isinstance(s, bytes)
    assert rle_string_to_counts(s).tolist() == counts
    assert rle_string_to_counts(s.decode()).tolist() == counts


def test_iou_hand_computed_and_crowd():
    a = np.zeros((4, 4), bool)
    a[:2, :2] = True  # 4 px
    b = np.zeros((4, 4), bool)
    b[:2, :] = True  # 8 px, contains a
    ra, rb = masks_to_rle([a]), masks_to_rle([b])
    assert rle_iou(ra, rb).tolist() == [[0.5]]
    assert rle_iou(ra, rb, iscrowd=[True]).tolist() == [[1.0]]  # inter / area(dt)
    empty = masks_to_rle([np.zeros((4, 4), bool)])
    assert rle_iou(empty, empty).tolist() == [[0.0]]


def test_boxes_hand_computed():
    m = np.zeros((2, 5, 6), bool)
    m[0, 1:3, 2:6] = True
    m[1, 4, 0] = True
    assert masks_to_boxes(m).tolist() == [[2, 1, 5, 2], [0, 4, 0, 4]]  # torchvision's xyxy
    assert xyxy_to_boxes(masks_to_boxes(m)).tolist() == [[1, 2, 3, 6], [4, 0, 5, 1]]
    assert boxes_to_xyxy([[1, 2, 3, 6], [4, 0, 5, 1]]).tolist() == [[2, 1, 5, 2], [0, 4, 0, 4]]
    assert xyxy_to_boxes([2, 1, 5, 2]).tolist() == [1, 2, 3, 6]
    m[1] = False
    with pytest.raises(ValueError, match=r"\[1\] are empty"):
        masks_to_boxes(m)
    with pytest.raises(TypeError, match="integer"):
        xyxy_to_boxes([[0.5, 0, 1, 1]])
    assert boxes_to_coco([[1, 2, 3, 6]]).tolist() == [[2.0, 1.0, 4.0, 2.0]]
    assert coco_to_boxes([[2, 1, 4, 2]]).tolist() == [[1.0, 2.0, 3.0, 6.0]]
    iou = box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 2, 2]])
    assert iou.tolist() == [[1 / 7, 0.0, 1.0]]


def test_label_boxes_and_their_unions_hand_computed():
    labels = np.array([[0, 0, 1, 1],
                       [2, 2, 1, 1],
                       [2, 3, 3, 3]])
    boxes = labels_to_boxes(labels)
    assert boxes.tolist() == [[0, 0, 1, 2], [0, 2, 2, 4], [1, 0, 3, 2], [2, 1, 3, 4]]
    assert labels_to_boxes(labels, 5)[4].tolist() == [3, 4, 0, 0]  # a label without pixels
    sets = np.array([[True, False, True, False], [False, True, False, True],
                     [True, True, True, True], [False, False, False, False]])
    assert union_boxes(boxes, sets).tolist()[:3] == [[0, 0, 3, 2], [0, 1, 3, 4], [0, 0, 3, 4]]
    big = np.iinfo(np.int64).max // 4
    assert union_boxes(boxes, sets)[3].tolist() == [big, big, 0, 0]
    with pytest.raises(ValueError, match=r"\(K, 4\) bool"):
        union_boxes(boxes, sets[:, :3])


def test_union_boxes_are_the_boxes_of_the_union_masks():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 9, (11, 13))
    sets = rng.random((20, 9)) < 0.3
    sets[:, 0] = True  # no empty union
    want = xyxy_to_boxes(masks_to_boxes(sets[:, labels]))
    np.testing.assert_array_equal(union_boxes(labels_to_boxes(labels), sets), want)


def test_empty_inputs():
    z = masks_to_rle(np.zeros((0, 3, 4), bool))
    assert z == []
    assert rle_to_masks([], shape=(3, 4)).shape == (0, 3, 4)
    assert rle_area([]).shape == (0,)
    assert rle_to_boxes([]).shape == (0, 4)
    assert masks_to_boxes(np.zeros((0, 3, 4), bool)).shape == (0, 4)
    one = masks_to_rle(np.ones((1, 3, 4), bool))
    assert rle_iou([], one).shape == (0, 1)
    assert rle_iou(one, []).shape == (1, 0)
    assert box_iou(np.zeros((0, 4)), np.zeros((2, 4))).shape == (0, 2)


def test_errors():
    with pytest.raises(ValueError, match="sums to 5 pixels"):
        rle_to_masks({"size": [2, 2], "counts": [2, 3]})
    with pytest.raises(TypeError, match="RLE dict"):
        rle_area([{"counts": [1]}])
    with pytest.raises(ValueError, match="one size"):
        rle_iou(masks_to_rle(np.ones((1, 2, 2))), masks_to_rle(np.ones((1, 3, 2))))
    with pytest.raises(ValueError, match="iscrowd"):
        rle_iou(masks_to_rle(np.ones((1, 2, 2))), masks_to_rle(np.ones((2, 2, 2))), [0])
    with pytest.raises(ValueError, match=r"\(H, W\) mask or a \(K, H, W\)"):
        masks_to_rle(np.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        rle_to_masks([])
    with pytest.raises(ValueError, match="truncated"):
        rle_string_to_counts(b"2o")  # 'o' = 48 + 63 has the "more" bit and nothing follows
    with pytest.raises(ValueError, match="alphabet"):
        rle_string_to_counts(b" ")
    with pytest.raises(ValueError, match=r"\(K, 4\)"):
        box_iou(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="r1 >= r0"):
        box_iou([[2, 0, 1, 1]], [[0, 0, 1, 1]])


# ------------------------------------------------------------------ pycocotools oracle


@pytest.mark.parametrize("seed", range(4))
def test_against_pycocotools(seed):
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(seed)
    for _ in range(10):
        h, w = (int(x) for x in rng.integers(1, 40, 2))
        k = int(rng.integers(1, 9))
        m = _random_masks(rng, k, h, w)
        ref = mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0).astype(np.uint8)))
        mine = masks_to_rle(m)
        assert [r["counts"] for r in mine] == [r["counts"] for r in ref]
        assert all(list(r["size"]) == [h, w] for r in mine)
        # uncompressed form is accepted by pycocotools' frPyObjects and gives the same string
        plain = masks_to_rle(m, compressed=False)
        assert mask_utils.frPyObjects(plain, h, w)[0]["counts"] == ref[0]["counts"]
        assert np.array_equal(rle_to_masks(ref), m)
        assert np.array_equal(mask_utils.decode(mine), m.transpose(1, 2, 0).astype(np.uint8))
        assert np.array_equal(rle_area(mine), mask_utils.area(ref))
        np.testing.assert_array_equal(boxes_to_coco(rle_to_boxes(mine)), mask_utils.toBbox(ref))
        ne = m.any(axis=(1, 2))
        np.testing.assert_array_equal(xyxy_to_boxes(masks_to_boxes(m[ne])), rle_to_boxes(mine)[ne])
        crowd = rng.random(k) < 0.4
        other = masks_to_rle(_random_masks(rng, k, h, w))
        np.testing.assert_array_equal(
            rle_iou(mine, other, crowd),
            mask_utils.iou(mine, other, crowd.astype(np.uint8)),
        )
        boxes_a = rle_to_boxes(mine)
        boxes_b = rle_to_boxes(other)
        np.testing.assert_allclose(
            box_iou(boxes_a, boxes_b),
            mask_utils.iou(boxes_to_coco(boxes_a), boxes_to_coco(boxes_b), np.zeros(k, np.uint8)),
            rtol=0,
            atol=1e-12,
        )


# ------------------------------------------------------------------ properties


@settings(deadline=None, max_examples=60)
@given(arrays(bool, st.tuples(st.integers(0, 4), st.integers(1, 12), st.integers(1, 12))))
def test_property_round_trip(m):
    for compressed in (True, False):
        rles = masks_to_rle(m, compressed=compressed)
        assert np.array_equal(rle_to_masks(rles, shape=m.shape[1:]), m)
        assert rle_area(rles).tolist() == m.sum(axis=(1, 2)).tolist()
        ne = m.any(axis=(1, 2))
        assert np.array_equal(rle_to_boxes(rles).reshape(-1, 4)[ne], xyxy_to_boxes(masks_to_boxes(m[ne])))
    if len(m):
        iou = rle_iou(masks_to_rle(m), masks_to_rle(m))
        nonempty = m.any(axis=(1, 2))
        assert np.allclose(np.diag(iou), nonempty.astype(float))
        assert np.allclose(iou, iou.T)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.integers(0, 2**31 - 1), max_size=20))
def test_property_counts_string_round_trip(counts):
    assert rle_string_to_counts(rle_counts_to_string(counts)).tolist() == counts
