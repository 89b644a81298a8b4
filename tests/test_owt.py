"""Tests for bottomup.owt (oriented watershed transform)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_hierarchy import higra_watershed, same_partition, watershed_forest_weight

from bottomup.owt import BoundaryPieces, oriented_watershed
from bottomup.owt import _kernels as OK
from bottomup.owt.oriented_watershed import _watershed_edges


def _channel_stack(shape, n_or=8):
    """Oriented stack whose channel o holds the constant (o + 1) / 10: strengths name channels."""
    return np.stack([np.full(shape, (o + 1) / 10.0) for o in range(n_or)])


def test_vertical_line_two_regions_one_piece():
    pb = np.zeros((5, 6))
    pb[:, 3] = 0.7
    labels, pieces = oriented_watershed(pb)
    assert labels.dtype == np.int32
    assert set(np.unique(labels)) == {0, 1}
    assert (labels[:, :3] == 0).all() and (labels[:, 4:] == 1).all()
    assert pieces.n_pieces == 1 and pieces.n_faces == 5
    np.testing.assert_array_equal(pieces.strengths, 0.7)
    # the faces lie in one column of the double grid, between two pixel columns
    assert len(set(pieces.faces[:, 1].tolist())) == 1
    assert pieces.piece_regions.tolist() == [[0, 1]]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("vertical", 0),  # the edge runs along rows: theta = 0 (FACTS A.2)
        ("horizontal", 4),  # theta = pi / 2
        ("diag_down_right", 2),  # theta = pi / 4: the edge runs down-right
        ("diag_down_left", 6),  # theta = 3 pi / 4
    ],
)
def test_piece_orientation_reads_the_matching_channel(line, expected):
    n = 24
    pb = np.zeros((n, n))
    idx = np.arange(n)
    if line == "vertical":
        pb[:, n // 2] = 1
    elif line == "horizontal":
        pb[n // 2, :] = 1
    elif line == "diag_down_right":
        pb[idx, idx] = 1
        pb[idx[:-1], idx[1:]] = 1
    else:
        pb[idx, n - 1 - idx] = 1
        pb[idx[:-1], n - 2 - idx[:-1]] = 1
    labels, pieces = oriented_watershed(pb, _channel_stack(pb.shape))
    assert labels.max() == 1
    # one straight boundary: every face reads channel `expected`
    np.testing.assert_array_equal(pieces.piece_channel, expected)
    np.testing.assert_allclose(pieces.strengths, (expected + 1) / 10.0)


def test_l_shaped_boundary_is_split_at_its_corner():
    pb = np.zeros((20, 20))
    pb[5:, 8] = 1  # vertical leg
    pb[5, 8:] = 1  # horizontal leg
    labels, pieces = oriented_watershed(pb, _channel_stack(pb.shape))
    assert labels.max() == 1
    assert pieces.n_pieces == 2
    assert sorted(pieces.piece_channel.tolist()) == [0, 4]
    # the two pieces meet at one vertex (the corner)
    ends = {tuple(e) for e in pieces.piece_ends.reshape(-1, 2).tolist()}
    assert len(ends) == 3


def test_closed_loop_is_split():
    pb = np.zeros((16, 16))
    pb[4, 4:12] = 1
    pb[11, 4:12] = 1
    pb[4:12, 4] = 1
    pb[4:12, 11] = 1
    labels, pieces = oriented_watershed(pb)
    assert labels.max() == 1
    assert pieces.n_pieces >= 2
    # each piece's faces form a chain from its first to its last vertex
    for p in range(pieces.n_pieces):
        e = pieces.piece_ends[p]
        assert not np.array_equal(e[0], e[1])


def test_pieces_cover_every_boundary_face_once():
    rng = np.random.default_rng(1)
    pb = rng.random((15, 17))
    labels, pieces = oriented_watershed(pb)
    lab = labels
    expected = set()
    for i in range(lab.shape[0]):
        for j in range(lab.shape[1]):
            if j + 1 < lab.shape[1] and lab[i, j] != lab[i, j + 1]:
                expected.add((2 * i + 1, 2 * j + 2))
            if i + 1 < lab.shape[0] and lab[i, j] != lab[i + 1, j]:
                expected.add((2 * i + 2, 2 * j + 1))
    got = [tuple(f) for f in pieces.faces.tolist()]
    assert len(got) == len(set(got)) and set(got) == expected
    # strengths (no orientation) = max of the two pixels of each face
    for (r, c), s in zip(got, pieces.strengths.tolist(), strict=True):
        if r % 2 == 1:
            i, j = (r - 1) // 2, (c - 2) // 2
            assert s == max(pb[i, j], pb[i, j + 1])
        else:
            i, j = (r - 2) // 2, (c - 1) // 2
            assert s == max(pb[i, j], pb[i + 1, j])
    # every piece separates the pair of regions it claims, on each of its faces
    for f, p in enumerate(pieces.face_piece.tolist()):
        r, c = got[f]
        if r % 2 == 1:
            a, b = lab[(r - 1) // 2, (c - 2) // 2], lab[(r - 1) // 2, (c - 2) // 2 + 1]
        else:
            a, b = lab[(r - 2) // 2, (c - 1) // 2], lab[(r - 2) // 2 + 1, (c - 1) // 2]
        assert sorted((a, b)) == pieces.piece_regions[p].tolist()
    grid = pieces.to_grid()
    assert grid.shape == (31, 35)
    assert (grid[1::2, 1::2] == 0).all()


def test_subdivision_tolerances():
    # an arc bent by ~5 px over 44 px is split with the defaults, not with a loose abs_tol
    pb = np.zeros((16, 44))
    cols = np.arange(44)
    rows = np.round(4 + 6 * np.sin(np.pi * cols / 43)).astype(int)
    pb[rows, cols] = 1
    for c in range(1, 44):  # keep the line 4-connected
        pb[min(rows[c], rows[c - 1]) : max(rows[c], rows[c - 1]) + 1, c] = 1
    _, tight = oriented_watershed(pb)
    _, loose = oriented_watershed(pb, abs_tol=10.0)
    assert loose.n_pieces == 1 < tight.n_pieces


@settings(deadline=None, max_examples=60)
@given(
    st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1), st.sampled_from([None, 1])
)
def test_partition_is_dense_and_matches_higra_watershed(h, w, seed, decimals):
    """Watershed cut = higra's ``labelisation_watershed``, ties and plateaus included."""
    pytest.importorskip("higra")
    rng = np.random.default_rng(seed)
    wh = rng.random((h, w - 1))
    wv = rng.random((h - 1, w))
    if decimals is not None:
        wh, wv = np.round(wh, decimals), np.round(wv, decimals)
    labels, k = _watershed_edges(wh, wv, (h, w))
    assert labels.dtype == np.int32 and labels.shape == (h, w)
    assert set(np.unique(labels).tolist()) == set(range(k))
    assert same_partition(labels, higra_watershed((h, w), wh, wv))


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_public_partition_dense(h, w, seed):
    rng = np.random.default_rng(seed)
    pb = np.round(rng.random((h, w)), 1)  # with ties and plateaus
    labels, pieces = oriented_watershed(pb)
    k = labels.max() + 1
    assert set(np.unique(labels).tolist()) == set(range(k))
    assert isinstance(pieces, BoundaryPieces)
    assert (pieces.faces.shape[0] == 0) == (k == 1)


def test_watershed_basins_are_catchment_of_minima():
    # two pits separated by a ridge: exactly two basins, the ridge on the boundary
    pb = np.array([[0.0, 0.2, 0.9, 0.3, 0.1]] * 3)
    labels, _ = oriented_watershed(pb)
    assert labels.max() == 1
    assert labels[0, 0] != labels[0, 4]


def test_constant_and_single_pixel_maps_give_one_region():
    for pb in (np.full((7, 9), 0.4), np.zeros((1, 1)), np.zeros((1, 5)), np.zeros((6, 1))):
        labels, pieces = oriented_watershed(pb)
        assert labels.shape == pb.shape and (labels == 0).all()
        assert pieces.n_faces == 0 and pieces.n_pieces == 0
        assert pieces.to_grid().shape == (2 * pb.shape[0] + 1, 2 * pb.shape[1] + 1)


@pytest.mark.parametrize(
    ("pb", "match"),
    [
        (np.array([[0.0, np.nan], [0.1, 0.2]]), "NaN or inf"),
        (np.array([[0.0, np.inf], [0.1, 0.2]]), "NaN or inf"),
        (np.array([[0.0, -0.1], [0.1, 0.2]]), ">= 0"),
        (np.zeros((3, 3, 3)), "2-D"),
        (np.zeros((0, 3)), "empty"),
    ],
)
def test_bad_pb(pb, match):
    with pytest.raises(ValueError, match=match):
        oriented_watershed(pb)


def test_bad_oriented():
    pb = np.zeros((4, 5))
    with pytest.raises(ValueError, match="same shape"):
        oriented_watershed(pb, np.zeros((8, 5, 4)))
    with pytest.raises(ValueError, match=r"\(O, H, W\)"):
        oriented_watershed(pb, np.zeros((4, 5)))
    bad = np.zeros((8, 4, 5))
    bad[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        oriented_watershed(pb, bad)
    with pytest.raises(TypeError, match="pb"):
        oriented_watershed(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="rel_tol"):
        oriented_watershed(pb, rel_tol=-1)


def test_pixel_to_edge_max():
    pb = np.arange(6, dtype=float).reshape(2, 3)
    wh, wv = OK._pixel_to_edge_max_kernel(pb)
    np.testing.assert_array_equal(wh, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(wv, [[3, 4, 5]])


def _ridge_with_a_side_branch():
    """A strong vertical ridge (column 2) and a weaker branch leaving it to the left (row 3)."""
    pb = np.zeros((6, 5))
    pb[:, 2] = 1.0
    pb[3, :2] = 0.5
    return pb


def test_descent_first_keeps_a_ridge_from_running_into_an_earlier_basin():
    # Hand-traced. Raster ties: every ridge pixel joins the basin of the ridge pixel above it
    # (a steepest edge to an already labelled pixel), so basin 0 grows a one-pixel "tentacle"
    # down the ridge between basins 1 and 2. Descent first: each ridge pixel drops to a strictly
    # lower neighbour (the first of the lowest, in the order up, left, right, down).
    pb = _ridge_with_a_side_branch()
    raster, _ = oriented_watershed(pb)
    np.testing.assert_array_equal(
        raster,
        [[0, 0, 0, 1, 1]] * 4 + [[2, 2, 0, 1, 1]] * 2,
    )
    descent, _ = oriented_watershed(pb, descent_first=True)
    np.testing.assert_array_equal(
        descent,
        [[0, 0, 0, 1, 1]] * 3 + [[0, 0, 1, 1, 1]] + [[2, 2, 2, 1, 1]] * 2,
    )


@settings(deadline=None, max_examples=60)
@given(
    st.integers(1, 10), st.integers(1, 10), st.integers(0, 2**32 - 1), st.sampled_from([None, 1])
)
def test_descent_first_is_a_watershed_cut(h, w, seed, decimals):
    """Same number of basins and same minimum-spanning-forest weight as higra's watershed cut."""
    pytest.importorskip("higra")
    rng = np.random.default_rng(seed)
    pb = rng.random((h, w))
    if decimals is not None:
        pb = np.round(pb, decimals)  # plateaus and ties
    wh, wv = OK._pixel_to_edge_max_kernel(pb)
    labels, k = _watershed_edges(wh, wv, (h, w), descent_first=True)
    assert set(np.unique(labels).tolist()) == set(range(k))
    ref = higra_watershed((h, w), wh, wv)
    assert k == len(np.unique(ref))
    assert watershed_forest_weight(labels, wh, wv) == pytest.approx(
        watershed_forest_weight(ref, wh, wv)
    )
