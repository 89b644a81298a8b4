"""Tests for bottomup.superpixels (hierarchy cuts, SLIC and Felzenszwalb wrappers)."""

from __future__ import annotations

import numpy as np
import pytest

from bottomup.hierarchy import ucm
from bottomup.superpixels import dense_labels, felzenszwalb, slic, superpixels


def _quadrants(dtype=np.float64):
    """4-quadrant 20x21 image with a little noise, as skimage's slic tests."""
    rng = np.random.default_rng(0)
    img = np.zeros((20, 21, 3))
    img[:10, :10] = [1, 0, 0]
    img[:10, 10:] = [0, 1, 0]
    img[10:, :10] = [0, 0, 1]
    img[10:, 10:] = [1, 1, 0]
    img = np.clip(img + 0.01 * rng.normal(size=img.shape), 0, 1)
    if dtype == np.uint8:
        return np.round(img * 255).astype(np.uint8)
    return img.astype(dtype)


def _check_partition(labels, shape):
    assert labels.dtype == np.int32 and labels.shape == shape
    assert set(np.unique(labels).tolist()) == set(range(labels.max() + 1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
def test_slic_quadrants(dtype):
    labels = slic(_quadrants(dtype), n_segments=4, compactness=1)
    _check_partition(labels, (20, 21))
    assert len(np.unique(labels)) == 4
    for q in (labels[:10, :10], labels[:10, 10:], labels[10:, :10], labels[10:, 10:]):
        assert len(np.unique(q)) == 1
    # same as scikit-image up to numbering
    from skimage.segmentation import slic as sk_slic

    ref = sk_slic(_quadrants(np.float64), n_segments=4, compactness=1, start_label=0)
    if dtype == np.float64:
        np.testing.assert_array_equal(labels, dense_labels(ref))


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_felzenszwalb_quadrants(dtype):
    labels = felzenszwalb(_quadrants(dtype), scale=100, sigma=0)
    _check_partition(labels, (20, 21))
    for q in (labels[:10, :10], labels[:10, 10:], labels[10:, :10], labels[10:, 10:]):
        assert len(np.unique(q)) == 1
    assert len(np.unique(labels)) == 4


def test_grayscale_channel_axis_none():
    img = _quadrants()[..., 0]
    _check_partition(slic(img, n_segments=4, channel_axis=None), img.shape)
    _check_partition(felzenszwalb(img, channel_axis=None), img.shape)


def test_wrappers_reject_bad_images():
    bad = _quadrants()
    bad[3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        slic(bad)
    with pytest.raises(ValueError, match="NaN"):
        felzenszwalb(bad)
    with pytest.raises(ValueError, match="n_segments"):
        slic(_quadrants(), n_segments=0)
    with pytest.raises(ValueError, match="channel_axis=None"):
        slic(np.zeros((5, 5, 7)))


def test_superpixels_from_a_hierarchy():
    rng = np.random.default_rng(0)
    h = ucm(rng.random((30, 40)))
    for n in (1, 5, 50, 10**6):
        labels = superpixels(h, n_segments=n)
        _check_partition(labels, (30, 40))
        assert labels.max() + 1 == min(n, h.n_leaves)
    t = float(np.median(h.levels))
    np.testing.assert_array_equal(superpixels(h, threshold=t), h.cut(t))
    with pytest.raises(ValueError, match="n_segments"):
        superpixels(h, n_segments=0)
    with pytest.raises(TypeError, match="Hierarchy"):
        superpixels(np.zeros((3, 3)), n_segments=2)


def test_dense_labels():
    np.testing.assert_array_equal(dense_labels([[5, 5, 9], [-1, 9, 5]]), [[1, 1, 2], [0, 2, 1]])
