"""Tests of multiscale hierarchies (``bottomup.hierarchy.multiscale``): pyramid, alignment,
combination, and the one assembler used by ``segment`` and MCG."""

from __future__ import annotations

import numpy as np
import pytest
from naive_hierarchy import naive_lca

from bottomup.contours import GPb
from bottomup.hierarchy import Hierarchy
from bottomup.hierarchy.multiscale import (
    aligned_levels,
    combine_hierarchies,
    image_pyramid,
    resize_labels,
)

#: The segment job's picture options when none is asked for (they are parameters of the record too).
NO_PICTURES = {"cut": None, "threshold": None, "labels_16bit": False}


def _blocks_hierarchy():
    """3x4 blocks of 2x2 pixels (12 leaves), merged in a fixed order."""
    lab = np.kron(np.arange(12).reshape(3, 4), np.ones((2, 2), int))
    # merges: (0,1)->12 .1, (2,3)->13 .2, (4,5)->14 .3, (12,14)->15 .4, (6,7)->16 .5,
    # (8,9)->17 .6, (10,11)->18 .6, (13,16)->19 .7, (17,18)->20 .75, (15,19)->21 .8, (21,20)->22 .9
    parents = [12, 12, 13, 13, 14, 14, 16, 16, 17, 17, 18, 18,
               15, 19, 15, 21, 19, 20, 20, 21, 22, 22, 22]
    alt = [0] * 12 + [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6, 0.7, 0.75, 0.8, 0.9]
    return Hierarchy(parents, alt, lab)


def test_lowest_common_ancestors_matches_naive():
    h = _blocks_hierarchy()
    rng = np.random.default_rng(0)
    a = rng.integers(0, h.n_nodes, 200)
    b = rng.integers(0, h.n_nodes, 200)
    got = h.lowest_common_ancestors(a, b)
    assert got.tolist() == [naive_lca(h.parents, int(x), int(y)) for x, y in zip(a, b, strict=True)]


def test_resize_labels_nearest():
    lab = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(resize_labels(lab, (4, 4)), np.kron(lab, np.ones((2, 2), int)))
    np.testing.assert_array_equal(resize_labels(np.kron(lab, np.ones((2, 2), int)), (2, 2)), lab)


def test_aligned_levels_identity_and_upsampled():
    h = _blocks_hierarchy()
    pairs, lca, _ = h.adjacent_leaves()
    np.testing.assert_allclose(aligned_levels(h, h.leaf_labels, pairs), h.altitudes[lca])
    # the same hierarchy at half size, aligned to the full-size leaves, gives the same levels
    small = Hierarchy(h.parents, h.altitudes, h.leaf_labels[::2, ::2])
    np.testing.assert_allclose(aligned_levels(small, h.leaf_labels, pairs), h.altitudes[lca])


def test_combine_is_identity_on_equal_hierarchies():
    h = _blocks_hierarchy()
    small = Hierarchy(h.parents, h.altitudes, h.leaf_labels[::2, ::2])
    out = combine_hierarchies([h, small], h.shape, sigmoid=None)
    np.testing.assert_allclose(out.to_ucm2(), h.to_ucm2())
    sig = combine_hierarchies([h, h], h.shape)
    u = h.to_ucm2()
    expect = np.where(u > 0, 1 / (1 + np.exp(-8 * (u - 0.35))), 0)
    np.testing.assert_allclose(sig.to_ucm2(), expect)


def test_combine_averages_levels():
    h = _blocks_hierarchy()
    flat = Hierarchy(h.parents, np.where(h.altitudes > 0, 0.5, 0.0), h.leaf_labels)
    out = combine_hierarchies([h, flat], h.shape, sigmoid=None)
    # the boundary between leaves 0 and 1 (lca 12) is (0.1 + 0.5) / 2
    u = out.to_ucm2()
    assert u[1, 4] == pytest.approx(0.3)
    with pytest.raises(TypeError, match="hierarchies"):
        combine_hierarchies([])


def test_combine_weights_match_repeated_hierarchies():
    h = _blocks_hierarchy()
    flat = Hierarchy(h.parents, np.where(h.altitudes > 0, 0.5, 0.0), h.leaf_labels)
    w = combine_hierarchies([h, flat], h.shape, sigmoid=None, weights=[3, 1]).to_ucm2()
    rep = combine_hierarchies([h, h, h, flat], h.shape, sigmoid=None).to_ucm2()
    np.testing.assert_allclose(w, rep, atol=1e-12)
    assert w[1, 4] == pytest.approx(0.75 * 0.1 + 0.25 * 0.5)  # leaves 0 | 1 (lca 12)
    for bad in ([1.0], [1.0, 0.0], [1.0, np.nan], [1.0, 2.0, 3.0]):
        with pytest.raises(ValueError, match="`weights` must be 2 positive numbers"):
            combine_hierarchies([h, flat], h.shape, weights=bad)


def test_multiscale_gpb_is_the_weighted_combination_of_segment_at_two_scales(tmp_path):
    import json

    import cv2

    from bottomup import segment
    from bottomup.cli import main

    img = np.zeros((48, 64, 3))
    img[:, 30:] = [0.9, 0.6, 0.2]
    img[10:26, 6:20] = [0.1, 0.3, 0.8]
    hs = [segment(level, GPb("fast")) for level in image_pyramid(img, (1.0, 0.5))]
    expect = combine_hierarchies(hs, (48, 64), sigmoid=None, weights=(0.75, 0.25))
    got = segment(img, GPb("fast", multiscale=True))
    np.testing.assert_array_equal(got.to_ucm2(), expect.to_ucm2())
    three = got.cut(n_regions=3)  # the three colour regions (boundaries within a pixel)
    parts = [three[:, 33:], three[12:24, 8:18], three[30:, :27]]
    assert all(len(np.unique(p)) == 1 for p in parts)
    assert len({int(p[0, 0]) for p in parts}) == 3
    cv2.imwrite(str(tmp_path / "a.png"), (img[..., ::-1] * 255).round().astype(np.uint8))
    read = cv2.imread(str(tmp_path / "a.png"))[..., ::-1]
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(out), "--preset", "fast",
                 "--format", "npz", "--multiscale", "--quiet"]) == 0
    man = json.loads(next(out.glob("manifest-*.json")).read_text())
    assert man["params"] == NO_PICTURES | {"contours": "gpb", "arcs": "mean", "multiscale": True,
                                           "preset": "fast", "seed": 0}
    ref = segment(read, GPb("fast", multiscale=True)).to_ucm2()
    np.testing.assert_array_equal(np.load(out / "a.npz")["ucm2"], ref)
    import importlib.util

    if importlib.util.find_spec("torch") is not None:  # --multiscale with the learned contours
        from deep.contours import LearnedContours

        out2 = tmp_path / "out2"
        assert main(["segment", str(tmp_path / "a.png"), "--out", str(out2), "--multiscale",
                     "--contours", "learned", "--format", "npz", "--quiet"]) == 0
        man = json.loads(next(out2.glob("manifest-*.json")).read_text())
        assert man["params"] == NO_PICTURES | {"contours": "learned", "multiscale": True, "arcs": "learned"}
        ref = segment(read, LearnedContours(multiscale=True)).to_ucm2()
        np.testing.assert_array_equal(np.load(out2 / "a.npz")["ucm2"], ref)
    # --single-scale: the image's own hierarchy, and the manifest says so
    out1 = tmp_path / "out1"
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(out1), "--preset", "quality",
                 "--format", "npz", "--single-scale", "--quiet"]) == 0
    man = json.loads(next(out1.glob("manifest-*.json")).read_text())
    assert man["params"]["multiscale"] is False and man["params"]["preset"] == "quality"
    np.testing.assert_array_equal(np.load(out1 / "a.npz")["ucm2"],
                                  segment(read, GPb("quality", multiscale=False)).to_ucm2())
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(out1), "--contours", "learned",
                 "--preset", "fast", "--quiet"]) == 2  # a gPb option on another source


def test_quality_preset_is_two_scale_by_default(monkeypatch):
    from bottomup import pipeline, segment
    from bottomup.contours import ContourSource, Multiscale

    img = np.zeros((48, 52, 3))
    img[:, 26:] = [0.9, 0.6, 0.2]
    img[8:30, 5:18] = [0.1, 0.3, 0.8]
    default = segment(img).to_ucm2()
    np.testing.assert_array_equal(default, segment(img, GPb("quality", multiscale=True)).to_ucm2())
    single = segment(img, GPb(multiscale=False)).to_ucm2()
    assert not np.array_equal(default, single)
    # another contour source, asked for two scales: that source at each level, aligned as for gPb
    seen_shapes = []

    def edges(im):
        seen_shapes.append(im.shape[:2])
        return np.abs(np.diff(im[..., 0], axis=1, prepend=im[:, :1, 0])), None

    two = segment(img, ContourSource(edges, multiscale=Multiscale()))
    assert seen_shapes == [(48, 52), (24, 26)]

    levels = [segment(lv, edges) for lv in image_pyramid(img, (1.0, 0.5))]
    np.testing.assert_array_equal(
        two.to_ucm2(),
        combine_hierarchies(levels, (48, 52), sigmoid=None, weights=(0.75, 0.25)).to_ucm2())
    # an image over gPb's max_pixels: the finest level keeps the image, the others are taken
    # relative to the downscaled copy gPb works on (x0.5 of 40x40 = 20 -> 24, the pyramid floor)
    seen = []
    real = pipeline.single_scale_hierarchy

    def spy(level, source, scorer):
        seen.append(level.shape[:2])
        return real(level, source, scorer)

    monkeypatch.setattr(pipeline, "single_scale_hierarchy", spy)
    small = GPb("fast", multiscale=True).with_policy(max_pixels=40 * 40)
    segment(np.zeros((80, 80, 3)), small)
    assert seen == [(80, 80), (24, 24)]


def test_image_pyramid_shapes():
    img = np.random.default_rng(0).random((40, 60, 3))
    levels = image_pyramid(img, (2.0, 1.0, 0.5))
    assert [lv.shape for lv in levels] == [(80, 120, 3), (40, 60, 3), (24, 30, 3)]
    assert all(lv.min() >= 0 and lv.max() <= 1 for lv in levels)
    with pytest.raises(ValueError, match="scales"):
        image_pyramid(img, (0, 1))


def test_mcg_method_end_to_end():
    from bottomup.mcg import proposals

    img = np.zeros((48, 64, 3))
    img[8:30, 10:40] = [1.0, 0.3, 0.2]
    c = proposals(img, n=20, method="mcg")
    assert 1 <= len(c) <= 20 and c.shape == (48, 64)
    m = c.masks()
    gt = np.zeros((48, 64), bool)
    gt[8:30, 10:40] = True
    assert ((m & gt).sum((1, 2)) / (m | gt).sum((1, 2))).max() > 0.7
