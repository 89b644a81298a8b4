"""Selective-search-style baseline (bottomup.mcg.baselines)."""

import numpy as np
import pytest
from naive_selective import naive_greedy_merge

from bottomup.mcg.baselines import (
    SS_FAST,
    Strategy,
    _texture_values,
    greedy_merge,
    region_features,
    selective_search,
    similarity,
)


def test_region_features_hand_case():
    labels = np.array([[0, 0, 1],
                       [2, 2, 1]])
    img = np.zeros((2, 3, 3))
    img[..., 0] = [[0.0, 0.0, 0.5], [0.99, 0.99, 0.5]]
    f = region_features(labels, img)
    np.testing.assert_array_equal(f.area, [2, 2, 2])
    np.testing.assert_array_equal(f.box, [[0, 0, 1, 2], [0, 2, 2, 3], [1, 0, 2, 2]])
    np.testing.assert_array_equal(f.edges, [[0, 1], [0, 2], [1, 2]])
    assert f.colour.shape == (3, 75) and f.texture.shape == (3, 240)
    np.testing.assert_allclose(f.colour.sum(axis=1), 1.0)
    # channel 0 of region 0 all in bin 0, of region 1 in bin 12 (0.5 * 25), region 2 in bin 24
    assert f.colour[0, 0] == pytest.approx(1 / 3)
    assert f.colour[1, 12] == pytest.approx(1 / 3)
    assert f.colour[2, 24] == pytest.approx(1 / 3)


def test_similarity_terms_by_hand():
    a = {"area": 2.0, "box": np.array([0, 0, 1, 2]), "colour": np.array([1.0, 0.0]),
         "texture": np.array([0.5, 0.5])}
    b = {"area": 1.0, "box": np.array([1, 1, 2, 2]), "colour": np.array([0.25, 0.75]),
         "texture": np.array([0.5, 0.5])}
    assert similarity(a, b, 6.0, ("colour",)) == pytest.approx(0.25)
    assert similarity(a, b, 6.0, ("texture",)) == pytest.approx(1.0)
    assert similarity(a, b, 6.0, ("size",)) == pytest.approx(1 - 3 / 6)
    # joint box 2 x 2 = 4 px, regions 3 px: one px of gap
    assert similarity(a, b, 6.0, ("fill",)) == pytest.approx(1 - 1 / 6)
    assert similarity(a, b, 6.0) == pytest.approx(0.25 + 1 + 0.5 + 5 / 6)


@pytest.mark.parametrize("terms", [("colour", "texture", "size", "fill"), ("texture", "size"),
                                   ("colour",), ("fill", "size")])
@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_merge_matches_naive(terms, seed):
    rng = np.random.default_rng(seed)
    # 3 x 4 grid of blocks of random colour plus noise: 12 initial regions
    blocks = rng.random((3, 4, 3))
    img = np.clip(np.kron(blocks, np.ones((4, 5, 1))) + 0.05 * rng.random((12, 20, 3)), 0, 1)
    labels = np.kron(np.arange(12).reshape(3, 4), np.ones((4, 5), int))
    merges = greedy_merge(region_features(labels, img), float(labels.size), terms)
    assert merges.shape == (11, 2)
    sets = [frozenset([i]) for i in range(12)]
    ours = []
    for i, j in merges:
        ours.append((sets[i], sets[j]))
        sets.append(sets[i] | sets[j])
    ref = naive_greedy_merge(labels, img, _texture_values(img), terms)
    assert [frozenset(p) for p in ours] == [frozenset(p) for p in ref]


def test_greedy_merge_rejects_bad_terms():
    f = region_features(np.array([[0, 1]]), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="terms"):
        greedy_merge(f, 2.0, ("shape",))


def _square_image():
    rng = np.random.default_rng(0)
    img = 0.2 + 0.05 * rng.random((48, 64, 3))
    img[10:30, 20:44] = [0.9, 0.2, 0.1]
    return img


def test_selective_search_finds_square_and_is_consistent():
    img = _square_image()
    c = selective_search(img, n=200)
    m = c.masks()
    assert 0 < len(c) <= 200 and m.shape[1:] == img.shape[:2]
    sq = np.zeros(img.shape[:2], bool)
    sq[10:30, 20:44] = True
    iou = (m & sq).sum((1, 2)) / (m | sq).sum((1, 2))
    assert iou.max() > 0.9
    # masks distinct, whole image among them, scores non-increasing, boxes are the masks' boxes
    assert len({r.tobytes() for r in np.packbits(c.leaf_sets, axis=1)}) == len(c)
    assert m.all(axis=(1, 2)).any()
    assert (np.diff(c.scores) <= 0).all()
    from bottomup.masks import masks_to_boxes, xyxy_to_boxes

    np.testing.assert_array_equal(c.boxes, xyxy_to_boxes(masks_to_boxes(m)))


def test_selective_search_n_seed_and_strategies():
    img = _square_image()
    a = selective_search(img, n=5, strategies=SS_FAST[:2], seed=3)
    b = selective_search(img, n=5, strategies=SS_FAST[:2], seed=3)
    assert len(a) == 5
    np.testing.assert_array_equal(a.leaf_sets, b.leaf_sets)
    one = selective_search(img, n=1000, strategies=[Strategy("rgb", 50.0, ("size", "fill"))])
    # one strategy with R initial regions: at most 2R - 1 distinct regions
    assert len(one) <= 2 * one.leaf_sets.shape[1] - 1
    assert len(selective_search(img, n=0)) == 0


def test_selective_search_bad_input():
    img = _square_image()
    with pytest.raises(TypeError, match="`n`"):
        selective_search(img, n=2.5)
    with pytest.raises(ValueError, match="`n`"):
        selective_search(img, n=-1)
    with pytest.raises(TypeError, match="strategies"):
        selective_search(img, strategies=["hsv"])
    with pytest.raises(ValueError, match="colour_space"):
        selective_search(img, strategies=[Strategy("xyz")])
