"""Semantic segmentation scores: hand-computed cases, accumulation, absent classes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from bottomup.metrics.semantic import (
    SemanticParams,
    SemanticSegmentationMetric,
    confusion_matrix,
    semantic_scores,
)


def _naive_confusion(true, pred, n, ignore):
    cm = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(np.ravel(true), np.ravel(pred), strict=True):
        if ignore is not None and t == ignore:
            continue
        cm[t, p] += 1
    return cm


def test_hand_computed_three_classes():
    true = np.array([[0, 0, 1, 1], [0, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 1, 0]])
    cm = confusion_matrix(true, pred, 3)
    # class 0: 3 true, 2 right, 1 -> class 1; class 1: 2 true, both right; class 2: 2 true, 1 right
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [0, 1, 1]]
    s = semantic_scores(cm)
    assert s.pixel_accuracy == pytest.approx(5 / 7)
    assert s.mean_accuracy == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    iou = [2 / 3, 2 / 4, 1 / 2]  # union: c0 3+2-2, c1 2+4-2, c2 2+1-1
    assert s.class_iou == pytest.approx(iou)
    assert s.mean_iou == pytest.approx(np.mean(iou))
    assert s.fw_iou == pytest.approx((3 * iou[0] + 2 * iou[1] + 2 * iou[2]) / 7)


def test_accumulates_counts_not_scores():
    rng = np.random.default_rng(0)
    m = SemanticSegmentationMetric(4, ignore_index=255)
    total = np.zeros((4, 4), np.int64)
    for _ in range(3):
        true = rng.integers(0, 4, (6, 7))
        true[rng.random((6, 7)) < 0.2] = 255
        pred = rng.integers(0, 4, (6, 7))
        m.update(true, pred)
        total += _naive_confusion(true, pred, 4, 255)
    s = m.compute()
    assert np.array_equal(s.confusion, total)
    assert s.mean_iou == pytest.approx(semantic_scores(total).mean_iou)
    m.reset()
    assert m.confusion.sum() == 0


def test_absent_class_excluded_and_predicted_only_class_counts():
    true = np.array([[0, 0, 1, 1]])
    # class 2 absent from both; class 3 only predicted (false positives)
    pred = np.array([[0, 3, 1, 1]])
    s = semantic_scores(confusion_matrix(true, pred, 4))
    assert s.present.tolist() == [True, True, False, True]
    assert np.isnan(s.class_iou[2])
    assert s.class_iou[3] == 0.0
    assert np.isnan(s.class_accuracy[3])  # no ground-truth pixel: accuracy undefined
    assert s.mean_iou == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert s.mean_accuracy == pytest.approx((1 / 2 + 1) / 2)
    assert s.fw_iou == pytest.approx((2 * 0.5 + 2 * 1.0) / 4)


def test_prediction_missing_a_class():
    """A prediction that never names class 1: its IoU and accuracy are 0, not skipped."""
    true = np.array([[0, 1], [1, 1]])
    pred = np.zeros((2, 2), int)
    s = semantic_scores(confusion_matrix(true, pred, 2))
    assert s.class_iou.tolist() == [0.25, 0.0]
    assert s.mean_accuracy == pytest.approx(0.5)


def test_all_void_gives_nan():
    s = semantic_scores(confusion_matrix(np.full((3, 3), 255), np.zeros((3, 3), int), 2))
    assert np.isnan([s.pixel_accuracy, s.mean_accuracy, s.mean_iou, s.fw_iou]).all()
    assert s.class_iou.shape == (2,) and np.isnan(s.class_iou).all()


def test_void_pixels_ignore_prediction_value():
    true = np.array([[0, 255]])
    pred = np.array([[0, 99]])  # out-of-range on a void pixel is fine
    assert confusion_matrix(true, pred, 2).tolist() == [[1, 0], [0, 0]]


def test_no_ignore_index():
    true = np.array([[0, 1]])
    assert confusion_matrix(true, true, 2, ignore_index=None).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="outside 0..1"):
        confusion_matrix(np.array([[0, 255]]), true, 2, ignore_index=None)


def test_matches_naive_random():
    rng = np.random.default_rng(1)
    for _ in range(5):
        true = rng.integers(0, 5, (9, 8))
        true[rng.random(true.shape) < 0.1] = 255
        pred = rng.integers(0, 5, (9, 8))
        assert np.array_equal(confusion_matrix(true, pred, 5), _naive_confusion(true, pred, 5, 255))


def test_errors():
    with pytest.raises(ValueError, match=r"`labels_true` \(shape \(2, 3\)\).*`labels_pred`"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 2)
    with pytest.raises(ValueError, match="`labels_true` holds label 7"):
        confusion_matrix(np.array([[7]]), np.array([[0]]), 2)
    with pytest.raises(ValueError, match="`labels_pred` holds label -1"):
        confusion_matrix(np.array([[0]]), np.array([[-1]]), 2)
    with pytest.raises(TypeError, match="labels_pred"):
        confusion_matrix(np.array([[0]]), np.array([[0.5]]), 2)
    with pytest.raises(ValueError, match="n_classes"):
        SemanticParams(0)
    with pytest.raises(TypeError, match="n_classes"):
        SemanticParams(2.0)
    with pytest.raises(ValueError, match="ignore_index"):
        SemanticParams(3, ignore_index=1)
    with pytest.raises(ValueError, match="square"):
        semantic_scores(np.zeros((2, 3), int))
    with pytest.raises(TypeError, match="integer"):
        semantic_scores(np.zeros((2, 2)))
