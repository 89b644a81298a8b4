"""Tests for bottomup.hierarchy (Hierarchy, greedy mean-boundary UCM, ucm2 round trips)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_hierarchy import (
    face_pairs,
    greedy_mean_merge,
    higra_mean_pb_ucm2,
    higra_watershed,
    lca_altitude,
    naive_lca,
    same_partition,
    ucm2_cut,
)

from bottomup.hierarchy import Hierarchy, hierarchy_from_pieces, normalize_ucm, ucm, ucm2_to_labels
from bottomup.hierarchy.ucm import _hierarchy_from_edge_weights
from bottomup.owt import oriented_watershed

maps = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1))


def _random_pb(h, w, seed, decimals=None):
    pb = np.random.default_rng(seed).random((h, w))
    return np.round(pb, decimals) if decimals is not None else pb


# -- tiny hand-computed cases ----


def test_hand_built_tree():
    # leaves 0 | 1 | 2 in columns; 0 and 1 merge at 0.2, then with 2 at 0.5
    h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])
    assert h.n_leaves == 3 and h.n_nodes == 5 and h.root == 4
    np.testing.assert_array_equal(h.levels, [0.2, 0.5])
    np.testing.assert_array_equal(h.areas, [2, 2, 2, 4, 6])
    np.testing.assert_array_equal(h.cut(0.1), [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(h.cut(0.2), [[0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(h.cut(0.5), 0)
    np.testing.assert_array_equal(h.cut(n_regions=2), h.cut(0.3))
    np.testing.assert_array_equal(h.cut(n_regions=99), h.cut(0.0))
    u = h.to_ucm2()
    assert u.shape == (5, 7)
    np.testing.assert_array_equal(u[1], [0, 0, 0.2, 0, 0.5, 0, 0])  # pixel row: faces between
    np.testing.assert_array_equal(u[0], [0, 0, 0.2, 0, 0.5, 0, 0])  # border row: vertices only
    np.testing.assert_array_equal(h.region_mask(3), [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(h.children(3), [0, 1])
    np.testing.assert_array_equal(h.leaves_of(4), [0, 1, 2])


def test_lowest_common_ancestors_hand_computed_and_naive():
    h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])
    assert h.lowest_common_ancestors([0, 0, 1, 3, 2, 4], [1, 2, 3, 0, 2, 0]).tolist() == [3, 4, 3, 3, 2, 4]
    # shapes: any, broadcast together
    assert h.lowest_common_ancestors([[0], [2]], [1, 2]).tolist() == [[3, 4], [4, 2]]
    assert h.lowest_common_ancestors(np.zeros((0, 3), int), 1).shape == (0, 3)
    hh = ucm(_random_pb(14, 17, 3))
    rng = np.random.default_rng(0)
    a = rng.integers(0, hh.n_nodes, 400)
    b = rng.integers(0, hh.n_nodes, 400)
    b[:20] = a[:20]
    b[20:40] = hh.parents[a[20:40]]  # a node and its parent
    got = hh.lowest_common_ancestors(a, b)
    assert got.tolist() == [naive_lca(hh.parents, int(x), int(y)) for x, y in zip(a, b, strict=True)]
    # the ucm2 holds the altitude of the LCA of the leaves on either side of each face
    pairs, lca, _ = hh.adjacent_leaves()
    np.testing.assert_array_equal(lca, hh.lowest_common_ancestors(pairs[:, 0], pairs[:, 1]))


def test_lowest_common_ancestors_errors():
    h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])
    with pytest.raises(ValueError, match=r"`b` must hold node ids in \[0, 4\]"):
        h.lowest_common_ancestors([0], [5])
    with pytest.raises(TypeError, match="`a` must hold integer"):
        h.lowest_common_ancestors([0.5], [1])
    with pytest.raises(ValueError, match="broadcast"):
        h.lowest_common_ancestors([0, 1], [0, 1, 2])


def test_ucm_of_two_ridges():
    pb = np.zeros((4, 7))
    pb[:, 2] = 0.3
    pb[:, 5] = 0.8
    h = ucm(pb)
    assert h.n_leaves == 3
    np.testing.assert_allclose(h.levels, [0.3, 0.8])
    assert h.cut(0.5).max() == 1 and h.cut(0.9).max() == 0
    assert h.cut(0.0).max() == 2


def test_mean_not_max_decides_the_order():
    # region A | B separated by a long weak boundary with one strong pixel (mean 0.325),
    # B | C by a uniform 0.4 boundary: A and B merge first although max(A|B) = 0.95
    pb = np.zeros((6, 9))
    pb[:, 3] = [0.2, 0.2, 0.2, 0.2, 0.2, 0.95]
    pb[:, 6] = 0.4
    h = ucm(pb)
    assert h.n_leaves == 3
    np.testing.assert_allclose(h.levels, [np.mean([0.2] * 5 + [0.95]), 0.4])


def test_constant_map_and_single_pixel():
    for pb in (np.full((5, 4), 0.3), np.zeros((1, 1))):
        h = ucm(pb)
        assert h.n_leaves == 1 and h.n_nodes == 1
        np.testing.assert_array_equal(h.cut(0.5), 0)
        np.testing.assert_array_equal(h.cut(n_regions=3), 0)
        u = h.to_ucm2()
        assert u.shape == (2 * pb.shape[0] + 1, 2 * pb.shape[1] + 1) and not u.any()
        assert Hierarchy.from_ucm2(u).n_leaves == 1
        assert h.levels.size == 0


def test_normalize_option():
    pb = np.zeros((4, 7))
    pb[:, 2] = 0.3
    pb[:, 5] = 0.8
    h = ucm(pb, normalize=True)
    np.testing.assert_allclose(h.levels, normalize_ucm([0.3, 0.8]))
    assert normalize_ucm(0.0) == 0.0 and 0 < normalize_ucm(0.5) < 1
    # monotone: same tree, same cuts in rank order
    np.testing.assert_array_equal(h.parents, ucm(pb).parents)


# -- the greedy merging against its naive reference ----


@settings(deadline=None, max_examples=40)
@given(args=maps)
def test_greedy_merging_matches_naive(args):
    h_, w_, seed = args
    pb = _random_pb(h_, w_, seed)
    labels, pieces = oriented_watershed(pb)
    hier = hierarchy_from_pieces(labels, pieces)
    strength = {
        tuple(f): s for f, s in zip(pieces.faces.tolist(), pieces.strengths.tolist(), strict=True)
    }
    levels = greedy_mean_merge(labels, strength)
    for pair, level in levels.items():
        a, b = tuple(pair)
        assert lca_altitude(hier.parents, hier.altitudes, a, b) == pytest.approx(level, rel=1e-12)


# -- ucm2 properties ----


@settings(deadline=None, max_examples=40)
@given(args=maps)
def test_ucm2_is_an_ultrametric_with_bsds_layout(args):
    h_, w_, seed = args
    pb = _random_pb(h_, w_, seed, decimals=1)  # ties and plateaus on purpose
    hier = ucm(pb)
    u = hier.to_ucm2()
    assert u.shape == (2 * h_ + 1, 2 * w_ + 1)
    assert (u[1::2, 1::2] == 0).all()
    # vertices are the max of their neighbours; border edges are 0
    p = np.pad(u, 1)
    v = np.maximum.reduce([p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]])
    np.testing.assert_array_equal(u[::2, ::2], v[::2, ::2])
    # each face holds the LCA altitude of its two leaves; the leaf distance is an ultrametric
    leaves = hier.leaf_labels
    for p1, p2, f in face_pairs(leaves):
        a, b = int(leaves[p1]), int(leaves[p2])
        expect = 0.0 if a == b else lca_altitude(hier.parents, hier.altitudes, a, b)
        assert u[f] == expect
    k = hier.n_leaves
    if k <= 12:
        d = np.array(
            [
                [
                    lca_altitude(hier.parents, hier.altitudes, a, b) if a != b else 0.0
                    for b in range(k)
                ]
                for a in range(k)
            ]
        )
        for c in range(k):
            assert (d <= np.maximum(d[:, [c]], d[[c], :]) + 1e-15).all()


@settings(deadline=None, max_examples=40)
@given(args=maps)
def test_cuts_nested_dense_and_equal_to_ucm2_thresholding(args):
    h_, w_, seed = args
    hier = ucm(_random_pb(h_, w_, seed, decimals=1))
    u = hier.to_ucm2()
    prev = None
    for t in [0.0, *hier.levels.tolist(), float(hier.altitudes.max()) + 1]:
        cut = hier.cut(t)
        assert cut.dtype == np.int32
        assert set(np.unique(cut).tolist()) == set(range(cut.max() + 1))
        assert same_partition(cut, ucm2_cut(u, t))
        if prev is not None:  # nested: each region of the finer cut inside one coarser region
            pairs = {(int(a), int(b)) for a, b in zip(prev.ravel(), cut.ravel(), strict=True)}
            assert len(pairs) == prev.max() + 1
        prev = cut


@settings(deadline=None, max_examples=40)
@given(args=maps)
def test_from_ucm2_round_trip(args):
    h_, w_, seed = args
    hier = ucm(_random_pb(h_, w_, seed, decimals=2))
    u = hier.to_ucm2()
    back = Hierarchy.from_ucm2(u)
    np.testing.assert_array_equal(back.to_ucm2(), u)


@settings(deadline=None, max_examples=40)
@given(args=maps)
def test_from_ucm2_cuts_any_grid_like_bsds_labelling(args):
    """Cuts equal ndi.label(u <= t) even for grids that are not ultrametric (vertex shortcuts)."""
    h_, w_, seed = args
    rng = np.random.default_rng(seed)
    u = np.round(rng.random((2 * h_ + 1, 2 * w_ + 1)), 1)
    u[1::2, 1::2] = 0
    hier = Hierarchy.from_ucm2(u)
    for t in np.unique(u):
        assert same_partition(hier.cut(t), ucm2_cut(u, t))


@settings(deadline=None, max_examples=25)
@given(args=maps)
def test_save_load_round_trip(args, tmp_path_factory):
    h_, w_, seed = args
    hier = ucm(_random_pb(h_, w_, seed))
    folder = tmp_path_factory.mktemp("h")
    hier.save(folder / "h.npz")
    back = Hierarchy.load(folder / "h.npz")
    np.testing.assert_array_equal(back.parents, hier.parents)
    np.testing.assert_array_equal(back.altitudes, hier.altitudes)
    np.testing.assert_array_equal(back.leaf_labels, hier.leaf_labels)
    hier.save(folder / "h.mat")  # BSDS-compatible ucm2
    back = Hierarchy.load(folder / "h.mat")
    np.testing.assert_array_equal(back.to_ucm2(), hier.to_ucm2())


@settings(deadline=None, max_examples=25)
@given(args=maps, n=st.integers(1, 30))
def test_cut_n_regions(args, n):
    h_, w_, seed = args
    hier = ucm(_random_pb(h_, w_, seed))
    cut = hier.cut(n_regions=n)
    assert cut.max() + 1 == min(n, hier.n_leaves)


# -- the higra oracle ----


@settings(deadline=None, max_examples=60)
@given(args=maps)
def test_same_ucm2_as_higra_mean_pb_hierarchy(args):
    """On tie-free edge weights our OWT-UCM and higra's mean_pb_hierarchy give the same ucm2."""
    pytest.importorskip("higra")
    h_, w_, seed = args
    rng = np.random.default_rng(seed)
    wh = rng.random((h_, w_ - 1))
    wv = rng.random((h_ - 1, w_))
    ours = _hierarchy_from_edge_weights(wh, wv, (h_, w_)).to_ucm2()
    # higra returns float32 altitudes here
    np.testing.assert_allclose(ours, higra_mean_pb_ucm2((h_, w_), wh, wv), rtol=1e-6, atol=0)


def test_same_cuts_as_higra_on_pixel_maps():
    """Pixel maps through the public API (edge weight = max of the two pixels, as in our OWT)."""
    pytest.importorskip("higra")
    from bottomup.owt._kernels import _pixel_to_edge_max_kernel

    rng = np.random.default_rng(3)
    for _ in range(15):
        pb = _random_pb(12, 12, int(rng.integers(2**32)))
        wh, wv = _pixel_to_edge_max_kernel(pb)
        ref = higra_mean_pb_ucm2(pb.shape, wh, wv)
        # max(pb[p], pb[q]) ties the edges of a pixel: the same cuts need the same tie-breaking
        # (edges in higra's order, then a stable sort by weight)
        np.testing.assert_allclose(ucm(pb).to_ucm2(), ref, rtol=1e-6, atol=0)
    # On plateaus (values rounded to 0.1) the watersheds still agree exactly (same stream
    # algorithm, same neighbour order). The merging may not: equal mean boundary strengths are a
    # tie that higra's Fibonacci heap breaks in its own order (a deliberate difference: ours pops
    # the lowest edge index first).
    for _ in range(15):
        pb = _random_pb(12, 12, int(rng.integers(2**32)), 1)
        wh, wv = _pixel_to_edge_max_kernel(pb)
        assert same_partition(ucm(pb).leaf_labels, higra_watershed(pb.shape, wh, wv))


# -- networkx, validation ----


def test_to_networkx():
    pytest.importorskip("networkx")
    h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])
    g = h.to_networkx()
    assert sorted(g.edges) == [(0, 1), (1, 2)]
    assert g.edges[0, 1]["level"] == 0.2 and g.edges[1, 2]["level"] == 0.5
    assert g.edges[0, 1]["length"] == 2 and g.nodes[0]["area"] == 2


@pytest.mark.parametrize(
    ("parents", "altitudes", "labels", "match"),
    [
        ([3, 3, 4, 4, 3], [0, 0, 0, 0.2, 0.5], [[0, 1, 2]], "root must be last"),
        ([1, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2]], "leaves"),
        ([3, 3, 4, 4, 4], [0, 0, 0, 0.6, 0.5], [[0, 1, 2]], "must not decrease"),
        ([3, 3, 4, 4, 4], [0, 0, 0, 0.2], [[0, 1, 2]], "shape of `parents`"),
        ([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 1]], "labels 0..2"),
        ([3, 3, 4, 4, 4], [0, 0, 0, 0.2, np.nan], [[0, 1, 2]], "NaN"),
        ([2, 2, 2], [0, 0, 1], [[0, 0, 0]], "one per leaf"),
    ],
)
def test_hierarchy_validation(parents, altitudes, labels, match):
    with pytest.raises(ValueError, match=match):
        Hierarchy(parents, altitudes, labels)


def test_hierarchy_type_errors_and_cut_arguments():
    with pytest.raises(TypeError, match="parents"):
        Hierarchy([0.5], [0.0], [[0]])
    h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2]])
    with pytest.raises(ValueError, match="exactly one"):
        h.cut()
    with pytest.raises(ValueError, match="exactly one"):
        h.cut(0.1, n_regions=2)
    with pytest.raises(ValueError, match="n_regions"):
        h.cut(n_regions=0)
    with pytest.raises(TypeError, match="n_regions"):
        h.cut(n_regions=1.5)
    with pytest.raises(ValueError, match="NaN"):
        h.cut(float("nan"))
    with pytest.raises(ValueError, match="node"):
        h.region_mask(7)
    assert h.parents.flags.writeable is False


def test_from_ucm2_rejects_non_bsds_grids(tmp_path):
    with pytest.raises(ValueError, match="odd"):
        Hierarchy.from_ucm2(np.zeros((4, 5)))
    u = np.zeros((5, 5))
    u[1, 1] = 0.3
    with pytest.raises(ValueError, match="pixel sites"):
        Hierarchy.from_ucm2(u)
    u = np.zeros((5, 5))
    u[1, 2] = -0.3
    with pytest.raises(ValueError, match=">= 0"):
        Hierarchy.from_ucm2(u)
    with pytest.raises(ValueError, match="NaN"):
        Hierarchy.from_ucm2(np.full((5, 5), np.nan))
    with pytest.raises(ValueError, match="file type"):
        Hierarchy([0], [0.0], [[0]]).save(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        Hierarchy.load(tmp_path / "missing.npz")


def test_ucm2_to_labels():
    u = np.zeros((3, 5))
    u[:, 2] = 0.5
    np.testing.assert_array_equal(ucm2_to_labels(u, 0.4), [[0, 1]])
    np.testing.assert_array_equal(ucm2_to_labels(u, 0.5), [[0, 0]])


@pytest.mark.slow
def test_bsds_val_round_trip(bsds_root):
    """from_ucm2(u).to_ucm2() == u and cuts == bwlabel(u <= t) on 5 BSDS val ucm2 files."""
    from bottomup.io import read_ucm2

    files = sorted((bsds_root / "ucm2" / "val").glob("*.mat"))[:5]
    assert files
    for f in files:
        u = read_ucm2(f)
        hier = Hierarchy.from_ucm2(u)
        np.testing.assert_array_equal(hier.to_ucm2(), u)
        for t in np.quantile(np.unique(u), [0.0, 0.1, 0.5, 0.9, 1.0]):
            assert same_partition(hier.cut(t), ucm2_cut(u, t)), (f.name, t)


@pytest.mark.slow
def test_bsds_ucm_contours_against_higra(bsds_root):
    """On a real contour map (a BSDS ucm2's boundaries), our ucm2 matches higra's closely."""
    pytest.importorskip("higra")
    from bottomup.io import read_ucm2
    from bottomup.owt._kernels import _pixel_to_edge_max_kernel

    f = sorted((bsds_root / "ucm2" / "val").glob("*.mat"))[0]
    pb = read_ucm2(f)[2::2, 2::2]
    wh, wv = _pixel_to_edge_max_kernel(pb)
    ours = ucm(pb).to_ucm2()
    ref = higra_mean_pb_ucm2(pb.shape, wh, wv)
    # differences come only from tie-breaking on plateaus of equal edge weights
    assert np.mean(np.abs(ours - ref)) < 0.01


def test_ucm_from_edge_weights_validation_and_shapes():
    from bottomup.hierarchy import ucm_from_edge_weights

    h = ucm_from_edge_weights(np.zeros((3, 0)), np.zeros((2, 1)))  # a 3x1 image
    assert h.shape == (3, 1) and h.n_leaves == 1
    with pytest.raises(ValueError, match=r"\(H, W-1\)"):
        ucm_from_edge_weights(np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        ucm_from_edge_weights(np.full((2, 2), np.nan), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        ucm_from_edge_weights(-np.ones((2, 2)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        ucm_from_edge_weights(np.zeros(3), np.zeros((1, 3)))


def test_descent_first_ucm_keeps_a_weak_branch_weak():
    # A strong vertical ridge (1.0, column 2) with a weak branch (0.5, row 3) to its left; the
    # partitions are hand-traced in tests/test_owt.py. Raster ties let the top-left basin run
    # down the ridge, so its boundary with the bottom-left basin takes two faces of the strong
    # ridge: mean (0.5 + 0.5 + 1 + 1) / 4 = 0.75. Descent first: only the two branch faces,
    # mean 0.5; the rest of the boundary is the ridge (all faces 1.0).
    pb = np.zeros((6, 5))
    pb[:, 2] = 1.0
    pb[3, :2] = 0.5
    assert ucm(pb).levels.tolist() == [0.75, 1.0]
    h = ucm(pb, descent_first=True)
    assert h.levels.tolist() == [0.5, 1.0]
    np.testing.assert_array_equal(
        h.cut(0.6), [[0, 0, 0, 1, 1]] * 3 + [[0, 0, 1, 1, 1]] + [[0, 0, 0, 1, 1]] * 2
    )


def test_ridge_owt_inputs_options():
    """smooth / isotropic / power of ridge_owt_inputs on a hand-made thick vertical edge."""
    from scipy.ndimage import gaussian_filter

    from bottomup.contours import Ridge
    from bottomup.contours.nms import oriented_nms
    from bottomup.owt import ridge_owt_inputs

    pb = np.zeros((9, 11))
    pb[:, 4], pb[:, 5], pb[:, 6] = 0.4, 0.8, 0.5  # thick response, ridge on column 5
    ori = np.zeros((8, 9, 11))
    ori[0] = pb  # the predicted bin (theta = 0 is a vertical edge in oriented_nms' convention) ...
    ori[4] = pb * 0.5  # ... and a weak, wrong-bin channel
    ws, st = ridge_owt_inputs(pb, ori)
    ridge = st.max(axis=0) > 0
    assert ridge[1:-1, 5].all() and not ridge[:, [3, 4, 6, 7]].any()  # (NMS leaves the border rows)
    np.testing.assert_allclose(st[4][1:-1, 5], 0.4)  # oriented: read in each channel
    np.testing.assert_allclose(st[0][1:-1, 5], 0.8)
    np.testing.assert_allclose(ws[:, 4], 0.3 * 0.4)  # floor * pb off the ridge
    # isotropic: pb on the ridge, the same in every orientation; 0 elsewhere
    _, iso = ridge_owt_inputs(pb, ori, Ridge(isotropic=True))
    assert iso.shape == ori.shape
    for o in range(8):
        np.testing.assert_allclose(iso[o], pb * ridge)
    # power applies to the strengths, not to the watershed input
    ws2, iso2 = ridge_owt_inputs(pb, ori, Ridge(isotropic=True, power=2.0))
    np.testing.assert_allclose(iso2, (pb * ridge)[None].repeat(8, 0) ** 2)
    np.testing.assert_allclose(ws2, ws)
    # smooth: the watershed input is built from the Gaussian-smoothed map, strengths from pb
    ws3, iso3 = ridge_owt_inputs(pb, ori, Ridge(isotropic=True, smooth=1.0))
    p = gaussian_filter(pb, 1.0)
    theta = np.argmax(ori, axis=0) * (np.pi / 8)
    nms = oriented_nms(p, theta, tolerance=np.pi / 8)
    np.testing.assert_allclose(ws3, np.maximum(nms, 0.3 * p))
    np.testing.assert_allclose(iso3[2], pb * (nms > 0))
    with pytest.raises(ValueError, match="power > 0"):
        Ridge(power=0)
    with pytest.raises(TypeError, match="`ridge` must be"):
        ridge_owt_inputs(pb, ori, {"power": 2.0})
