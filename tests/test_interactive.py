"""Tests for bottomup.interactive (scribbles completed by ultrametric distance) and its CLI."""

from __future__ import annotations

import argparse
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_hierarchy import uvt

from bottomup.hierarchy import Hierarchy, ucm
from bottomup.interactive import (
    FlatZones,
    _cli,
    default_contours,
    default_hierarchy,
    flat_zones,
    hierarchy_of_image,
    lab_edge_weights,
    segment,
)


def _disk_image(noise=0.03, seed=0):
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:40, :50]
    gt = ((rr - 20) ** 2 + (cc - 24) ** 2 < 12**2).astype(np.int32) + 1
    img = np.where(gt[..., None] == 2, [0.8, 0.3, 0.2], [0.2, 0.4, 0.7])
    img = np.clip(img + rng.normal(0, noise, img.shape), 0, 1)
    seeds = np.zeros(gt.shape, np.int64)
    seeds[20, 18:30] = 2  # a stroke inside the disk
    seeds[3, 3:40] = 1  # a stroke in the background
    return img, gt, seeds


def test_two_scribbles_give_the_two_regions_exactly():
    img, gt, seeds = _disk_image()
    out = segment(hierarchy_of_image(img), seeds)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, gt)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.0, 2.0])
def test_straight_two_region_image_exact_for_any_blur(sigma):
    rng = np.random.default_rng(1)
    img = np.zeros((30, 31, 3))
    img[:, 13:] = [0.9, 0.8, 0.1]
    img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
    seeds = np.zeros((30, 31), int)
    seeds[5, 2] = 1
    seeds[25, 29] = 7
    out = segment(hierarchy_of_image(img, sigma=sigma), seeds)
    expected = np.where(np.arange(31) < 13, 1, 7)[None].repeat(30, 0)
    np.testing.assert_array_equal(out, expected)


def test_hand_built_hierarchies():
    # leaves 0 1 2 3 in a row; 0+1 at 0.1, 2+3 at 0.2, all at 0.9
    h = Hierarchy([4, 4, 5, 5, 6, 6, 6], [0, 0, 0, 0, 0.1, 0.2, 0.9], [[0, 1, 2, 3]])
    np.testing.assert_array_equal(segment(h, [[1, 0, 0, 2]]), [[1, 1, 2, 2]])
    np.testing.assert_array_equal(segment(h, [[0, 3, 0, 0]]), [[3, 3, 3, 3]])
    # both seeds are at ultrametric distance 0.9 from leaves 0 and 1, but label 1 walls label 2
    # off: the front entering {0, 1} comes from leaf 2 only
    np.testing.assert_array_equal(segment(h, [[0, 0, 1, 2]]), [[1, 1, 1, 2]])
    # two fronts entering at the same level: the larger label wins, as uvt
    h2 = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.9], [[0, 1], [0, 2]])
    np.testing.assert_array_equal(segment(h2, [[0, 5], [0, 3]]), [[5, 5], [5, 3]])
    # two labels in one leaf (distance 0 to both): the larger takes the leaf, as uvt
    h1 = Hierarchy([2, 2, 2], [0, 0, 1], [[0, 0, 1]])
    np.testing.assert_array_equal(segment(h1, [[1, 4, 0]]), [[4, 4, 4]])


@settings(deadline=None, max_examples=60)
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
    st.integers(1, 8),
    st.sampled_from([None, 1]),
)
def test_matches_front_propagation_on_the_ucm2(h_, w_, seed, n_seeds, decimals):
    """segment() = a plain-Python minimax front propagation (uvt) on the ucm2 grid."""
    rng = np.random.default_rng(seed)
    pb = rng.random((h_, w_))
    hier = ucm(pb if decimals is None else np.round(pb, decimals))
    seeds = np.zeros((h_, w_), np.int64)
    idx = rng.choice(h_ * w_, size=min(n_seeds, h_ * w_), replace=False)
    seeds.ravel()[idx] = rng.integers(1, 4, len(idx))
    np.testing.assert_array_equal(segment(hier, seeds), uvt(hier.to_ucm2(), seeds))


def test_bad_seeds():
    h = ucm(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="no label"):
        segment(h, np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="shape"):
        segment(h, np.ones((5, 4), int))
    with pytest.raises(ValueError, match=">= 0"):
        segment(h, -np.ones((4, 5), int))
    with pytest.raises(TypeError, match="integer"):
        segment(h, np.ones((4, 5)))
    with pytest.raises(TypeError, match="Hierarchy or a .* ucm2 array"):
        segment("h.mat", np.ones((4, 5), int))
    with pytest.raises(ValueError, match="double-size shape"):
        segment(np.zeros((8, 11)), np.ones((4, 5), int))
    with pytest.raises(ValueError, match="shape"):
        segment(np.zeros((9, 11)), np.ones((5, 5), int))
    bad = np.zeros((9, 11))
    bad[3, 3] = 0.5  # a pixel site
    with pytest.raises(ValueError, match=r"pixel sites \[1::2, 1::2\] must be 0"):
        segment(bad, np.ones((4, 5), int))
    with pytest.raises(ValueError, match="shape"):
        segment(flat_zones(h), np.ones((5, 4), int))


@settings(deadline=None, max_examples=80)
@given(
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
)
def test_ucm2_array_matches_front_propagation_with_many_ties(h_, w_, seed, n_levels):
    """A ucm2 array is used as given: any grid (ultrametric or not) with heavy ties = naive uvt."""
    rng = np.random.default_rng(seed)
    u = np.round(rng.random((2 * h_ + 1, 2 * w_ + 1)) * n_levels) / n_levels
    u[1::2, 1::2] = 0
    seeds = np.zeros((h_, w_), np.int64)
    k = int(rng.integers(1, h_ * w_ + 1))
    seeds.ravel()[rng.choice(h_ * w_, size=k, replace=False)] = rng.integers(1, 5, k)
    zones = flat_zones(u)
    np.testing.assert_array_equal(segment(u, seeds), uvt(u, seeds))
    np.testing.assert_array_equal(segment(zones, seeds), uvt(u, seeds))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_larger_hierarchy_many_labels_matches_front_propagation(seed):
    """A 40x50 hierarchy with few distinct levels (many ties), 60 seeds in 6 labels."""
    rng = np.random.default_rng(seed)
    hier = ucm(np.round(rng.random((40, 50)) ** 2, 1))
    seeds = np.zeros((40, 50), np.int64)
    idx = rng.choice(2000, size=60, replace=False)
    seeds.ravel()[idx] = rng.integers(1, 7, 60)
    zones = flat_zones(hier)
    assert zones.n_zones < 40 * 50 * 4
    np.testing.assert_array_equal(segment(zones, seeds), uvt(hier.to_ucm2(), seeds))


def test_flat_zones_of_a_hand_built_ucm2():
    # 2 x 3 pixels: columns 0 | 1 2, the boundary at level 0.5; pixels 1, 2 joined at 0
    u = np.zeros((5, 7))
    u[:, 2] = 0.5
    z = flat_zones(u)
    assert isinstance(z, FlatZones) and z.shape == (2, 3) and z.n_zones == 3
    left, wall, right = z.pixel_zone[0, 0], 1, z.pixel_zone[0, 2]
    assert z.pixel_zone.tolist() == [[left, right, right], [left, right, right]]
    assert sorted(z.levels.tolist()) == [0.0, 0.0, 0.5]
    assert z.levels[wall] == 0.5 and z.indptr.tolist() == [0, 1, 3, 4]
    assert sorted(z.indices[z.indptr[wall]: z.indptr[wall + 1]].tolist()) == [left, right]
    np.testing.assert_array_equal(segment(z, [[2, 0, 0], [0, 0, 1]]), [[2, 1, 1], [2, 1, 1]])


def test_hierarchy_and_its_ucm2_give_the_same_labels():
    rng = np.random.default_rng(3)
    hier = ucm(np.round(rng.random((15, 17)), 1))
    seeds = np.zeros((15, 17), np.int64)
    seeds[2, 3], seeds[12, 14], seeds[7, 1] = 1, 2, 3
    out = segment(hier.to_ucm2(), seeds)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, segment(hier, seeds))
    np.testing.assert_array_equal(out, segment(flat_zones(hier), seeds))


def test_one_pixel_and_constant_images():
    np.testing.assert_array_equal(segment(hierarchy_of_image(np.zeros((1, 1, 3))), [[3]]), [[3]])
    out = segment(hierarchy_of_image(np.full((6, 7, 3), 0.5)), np.pad([[2]], ((0, 5), (0, 6))))
    np.testing.assert_array_equal(out, 2)


def test_lab_edge_weights_shapes_and_range():
    img, _, _ = _disk_image()
    wh, wv = lab_edge_weights(img)
    assert wh.shape == (40, 49) and wv.shape == (39, 50)
    assert wh.min() >= 0 and max(wh.max(), wv.max()) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        lab_edge_weights(np.full((4, 4, 3), np.nan))


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="bottomup")
    _cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_default_contours_follow_torch(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torch" else 1)
    assert default_contours() is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert default_contours() == "learned"


@pytest.mark.parametrize(
    ("contours", "torch_found", "expected"),
    [("auto", True, {"contours": "learned"}), ("auto", False, {}), ("gpb", True, {}),
     ("learned", False, {"contours": "learned"})],
)
def test_default_hierarchy_is_the_engine_segment(monkeypatch, contours, torch_found, expected):
    import importlib.util

    import bottomup.pipeline

    calls = []
    monkeypatch.setattr(bottomup.pipeline, "segment", lambda img, **kw: calls.append(kw) or "h")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if torch_found else None)
    assert default_hierarchy(np.zeros((4, 4, 3)), contours=contours) == "h"
    assert calls == [expected]
    with pytest.raises(ValueError, match="'auto', 'learned' or 'gpb'"):
        default_hierarchy(np.zeros((4, 4, 3)), contours="lab")


def test_cli_label_seeds(tmp_path, capsys, monkeypatch):
    """Without --ucm the CLI uses default_hierarchy (patched here to the cheap Lab hierarchy)."""
    seg_mod = importlib.import_module("bottomup.interactive.segment")

    cv2 = pytest.importorskip("cv2")
    img, gt, seeds = _disk_image()
    used = []

    def fake_default(image, *, contours):
        used.append(contours)
        return hierarchy_of_image(image)

    monkeypatch.setattr(seg_mod, "default_hierarchy", fake_default)
    cv2.imwrite(str(tmp_path / "img.png"), np.round(img[..., ::-1] * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "seeds.png"), seeds.astype(np.uint8))
    rc = _run_cli(
        [
            "interactive",
            str(tmp_path / "img.png"),
            str(tmp_path / "seeds.png"),
            "--out",
            str(tmp_path / "out.png"),
        ]
    )
    assert rc == 0
    assert used == ["auto"]
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(out, gt)
    assert "wrote" in capsys.readouterr().out


def test_cli_colour_seeds_and_ucm(tmp_path):
    cv2 = pytest.importorskip("cv2")
    img, gt, seeds = _disk_image()
    cv2.imwrite(str(tmp_path / "img.png"), np.round(img[..., ::-1] * 255).astype(np.uint8))
    colour = np.zeros(seeds.shape + (3,), np.uint8)
    colour[seeds == 1] = (0, 255, 0)
    colour[seeds == 2] = (0, 0, 255)
    cv2.imwrite(str(tmp_path / "seeds.png"), colour)
    # a hierarchy file instead of the built-in contours
    hierarchy_of_image(img).save(tmp_path / "h.mat")
    rc = _run_cli(
        [
            "interactive",
            str(tmp_path / "img.png"),
            str(tmp_path / "seeds.png"),
            "--ucm",
            str(tmp_path / "h.mat"),
            "-o",
            str(tmp_path / "out.png"),
        ]
    )
    assert rc == 0
    out = cv2.imread(str(tmp_path / "out.png"))
    np.testing.assert_array_equal(out[gt == 1], np.broadcast_to([0, 255, 0], out[gt == 1].shape))
    np.testing.assert_array_equal(out[gt == 2], np.broadcast_to([0, 0, 255], out[gt == 2].shape))


def test_cli_errors(tmp_path, capsys, monkeypatch):
    seg_mod = importlib.import_module("bottomup.interactive.segment")

    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(seg_mod, "default_hierarchy", lambda image, **kw: hierarchy_of_image(image))
    cv2.imwrite(str(tmp_path / "img.png"), np.zeros((8, 9, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "small.png"), np.ones((4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((8, 9), np.uint8))
    for seeds, msg in [
        ("small.png", "size of IMAGE"),
        ("empty.png", "no label"),
        ("missing.png", "not found"),
    ]:
        rc = _run_cli(
            [
                "interactive",
                str(tmp_path / "img.png"),
                str(tmp_path / seeds),
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
        assert rc == 1
        assert msg in capsys.readouterr().err
