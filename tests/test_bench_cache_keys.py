"""Keys of the benchmark caches (bench/proposals.py hierarchies, bench/train_ranker.py pools):
one ingredient changed is a miss, none changed is a hit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from bottomup.hierarchy import Hierarchy
from bottomup.io import cache as cache_mod

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sys.path.insert(0, str(BENCH))  # train_ranker imports `proposals` as bench/ does: the same module
proposals_bench = importlib.import_module("proposals")
train_ranker = _load("train_ranker")


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "img.png"
    p.write_bytes(b"\x89PNG pretend image bytes")
    return p


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """Stand-in for the shipped contour net / arc scorer: a file whose content the test edits."""
    m = tmp_path / "model.pt"
    m.write_bytes(b"weights v1")
    real = proposals_bench.model_files

    def files(contours=None, arcs=None):
        return [m] if contours == "learned" else real(contours, arcs)

    monkeypatch.setattr(proposals_bench, "model_files", files)
    return m


def test_model_files_of_the_arcs():
    assert proposals_bench.model_files(None) == []  # gPb with mean arcs reads no shipped file
    learned = proposals_bench.model_files(None, "learned")
    assert [p.name for p in learned] == ["arcs_learned.npz"] and learned[0].is_file()


def test_hierarchy_key_ingredients(image, fake_model, monkeypatch):
    key = proposals_bench.hierarchy_key
    k = key(image, "scg", owt="steepest")
    assert k == key(image, "scg", owt="steepest")  # a hit
    assert k == key(image, "scg", owt="steepest", arcs="mean")  # arcs=None resolves to mean
    others = [key(image, "mcg", owt="steepest"), key(image, "scg", owt="plain"),
              key(image, "scg", owt="steepest", arcs="learned")]
    # learned contours: mean and learned arcs no longer share one tag
    kl = key(image, "scg", contours="learned")
    assert kl == key(image, "scg", contours="learned", arcs="learned")
    others += [kl, key(image, "scg", contours="learned", arcs="mean")]
    assert k not in others and len(set(others)) == len(others)
    fake_model.write_bytes(b"weights v2")  # a retrained contour net
    assert key(image, "scg", contours="learned") != kl
    image.write_bytes(b"another image")
    assert key(image, "scg", owt="steepest") != k
    image_k = key(image, "scg", owt="steepest")
    monkeypatch.setattr(cache_mod, "code_version", lambda *m: "edited")
    assert key(image, "scg", owt="steepest") != image_k


def test_cached_hierarchy_hits_and_misses(tmp_path, image):
    calls = []

    def compute():
        calls.append(1)
        return Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])

    cache = tmp_path / "hier"
    k = proposals_bench.hierarchy_key(image, "scg", owt="steepest")
    h, hit = proposals_bench.cached_hierarchy(cache, k, "scg-steepest_bsds_1", compute)
    assert not hit and len(calls) == 1
    h2, hit = proposals_bench.cached_hierarchy(cache, k, "scg-steepest_bsds_1", compute)
    assert hit and len(calls) == 1
    np.testing.assert_array_equal(h2.parents, h.parents)
    np.testing.assert_array_equal(h2.altitudes, h.altitudes)
    k2 = proposals_bench.hierarchy_key(image, "scg", owt="steepest", arcs="learned")
    _, hit = proposals_bench.cached_hierarchy(cache, k2, "scg-steepest_bsds_1", compute)
    assert not hit and len(calls) == 2
    _, hit = proposals_bench.cached_hierarchy(None, k, "x", compute)  # no cache folder
    assert not hit and len(calls) == 3


def test_ranker_pool_key_ingredients(tmp_path, image, fake_model):
    gt = tmp_path / "gt.mat"
    gt.write_bytes(b"ground truth v1")
    key = train_ranker.pool_key
    k = key(image, gt, "scg", "steepest", None, None)
    assert k == key(image, gt, "scg", "steepest", None, None)
    from bottomup.mcg.pipeline import PRESETS

    assert k == key(image, gt, "scg", "steepest", None, PRESETS["scg"][1])  # the preset's quotas
    others = [key(image, gt, "scg", "steepest", None, (10, 10, 10, 10)),
              key(image, gt, "scg", "plain", None, None),
              key(image, gt, "mcg", "steepest", None, None),
              key(image, gt, "scg", "steepest", "learned", None),
              proposals_bench.hierarchy_key(image, "scg", owt="steepest")]  # a pool is no hierarchy
    assert k not in others and len(set(others)) == len(others)
    gt.write_bytes(b"ground truth v2")  # the targets
    assert key(image, gt, "scg", "steepest", None, None) != k
    kl = key(image, gt, "scg", "steepest", "learned", None)
    fake_model.write_bytes(b"weights v2")
    assert key(image, gt, "scg", "steepest", "learned", None) != kl
    name = train_ranker.pool_file(tmp_path, "msrc", "1_2_s", "scg-steepest", k).name
    assert name == f"scg-steepest_msrc_1_2_s-{k}.npz"


def test_arc_features_key_ingredients(tmp_path, image, monkeypatch):
    train_arcs = _load("train_arcs")
    gt, pb = tmp_path / "gt.mat", tmp_path / "pb.png"
    gt.write_bytes(b"ground truth")
    pb.write_bytes(b"contour map v1")
    k = train_arcs.arcs_key(image, gt, pb)
    assert k == train_arcs.arcs_key(image, gt, pb)
    pb.write_bytes(b"contour map v2")  # another detector's map
    k2 = train_arcs.arcs_key(image, gt, pb)
    assert k2 != k
    gt.write_bytes(b"other ground truth")
    k3 = train_arcs.arcs_key(image, gt, pb)
    assert k3 != k2
    monkeypatch.setattr(cache_mod, "code_version", lambda *m: "edited")
    assert train_arcs.arcs_key(image, gt, pb) != k3
