"""Keys of the benchmark caches (bottomup.mcg.cache hierarchies, bench/train_ranker.py pools):
one ingredient changed is a miss, none changed is a hit."""

from __future__ import annotations

import numpy as np
import pytest
from bench_scripts import load_bench

from bottomup.contours import ContourSource, GPb
from bottomup.hierarchy import Hierarchy
from bottomup.io import cache as cache_mod
from bottomup.mcg import PROPOSAL_GPB
from bottomup.mcg.cache import cached_hierarchy, hierarchy_key
from bottomup.pipeline import model_files

train_ranker = load_bench("train_ranker")
GPB = PROPOSAL_GPB
GPB_PLAIN = GPb("medium", owt="plain", multiscale=False)


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "img.png"
    p.write_bytes(b"\x89PNG pretend image bytes")
    return p


class _Learned(ContourSource):
    """Stand-in for the learned contours: its weights are a file whose content the test edits."""

    def model_files(self):
        return (self.name,)


@pytest.fixture
def fake_model(tmp_path):
    m = tmp_path / "model.pt"
    m.write_bytes(b"weights v1")
    return m, _Learned(lambda img: (img[..., 0], None), arcs="learned", name=str(m))


def test_model_files_of_the_arcs(fake_model):
    assert model_files(GPB) == []  # gPb with mean arcs reads no shipped file
    learned = model_files(GPB, "learned")
    assert [p.name for p in learned] == ["arcs_learned.npz"] and learned[0].is_file()
    m, src = fake_model
    assert [p.name for p in model_files(src)] == ["model.pt", "arcs_learned.npz"]


def test_hierarchy_key_ingredients(image, fake_model, monkeypatch):
    k = hierarchy_key(image, "scg", GPB)
    assert k == hierarchy_key(image, "scg", GPB)  # a hit
    assert k == hierarchy_key(image, "scg", GPB, arcs="mean")  # arcs=None resolves to the source's
    others = [hierarchy_key(image, "mcg", GPB), hierarchy_key(image, "scg", GPB_PLAIN),
              hierarchy_key(image, "scg", GPB, arcs="learned"), hierarchy_key(image, "scg", GPb("fast"))]
    m, learned = fake_model
    kl = hierarchy_key(image, "scg", learned)
    assert kl == hierarchy_key(image, "scg", learned, arcs="learned")
    others += [kl, hierarchy_key(image, "scg", learned, arcs="mean")]  # no shared tag for the arcs
    assert k not in others and len(set(others)) == len(others)
    m.write_bytes(b"weights v2")  # a retrained contour net
    assert hierarchy_key(image, "scg", learned) != kl
    image.write_bytes(b"another image")
    assert hierarchy_key(image, "scg", GPB) != k
    image_k = hierarchy_key(image, "scg", GPB)
    monkeypatch.setattr(cache_mod, "code_version", lambda *m: "edited")
    assert hierarchy_key(image, "scg", GPB) != image_k


def test_cached_hierarchy_hits_and_misses(tmp_path, image):
    calls = []

    def compute():
        calls.append(1)
        return Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])

    cache = tmp_path / "hier"
    k = hierarchy_key(image, "scg", GPB)
    h, hit = cached_hierarchy(cache, k, "scg-steepest_bsds_1", compute)
    assert not hit and len(calls) == 1
    h2, hit = cached_hierarchy(cache, k, "scg-steepest_bsds_1", compute)
    assert hit and len(calls) == 1
    np.testing.assert_array_equal(h2.parents, h.parents)
    np.testing.assert_array_equal(h2.altitudes, h.altitudes)
    k2 = hierarchy_key(image, "scg", GPB, arcs="learned")
    _, hit = cached_hierarchy(cache, k2, "scg-steepest_bsds_1", compute)
    assert not hit and len(calls) == 2
    _, hit = cached_hierarchy(None, k, "x", compute)  # no cache folder
    assert not hit and len(calls) == 3


def test_ranker_pool_key_ingredients(tmp_path, image):
    from bottomup.mcg.grouping import SCG_QUOTAS

    gt = tmp_path / "gt.mat"
    gt.write_bytes(b"ground truth v1")
    key = train_ranker.pool_key
    k = key(image, gt, "scg", "steepest", None, None)
    assert k == key(image, gt, "scg", "steepest", None, None)
    assert k == key(image, gt, "scg", "steepest", None, SCG_QUOTAS)  # the default quotas
    others = [key(image, gt, "scg", "steepest", None, (10, 10, 10, 10)),
              key(image, gt, "scg", "plain", None, None),
              key(image, gt, "mcg", "steepest", None, None),
              hierarchy_key(image, "scg", GPB)]  # a pool is no hierarchy
    assert k not in others and len(set(others)) == len(others)
    gt.write_bytes(b"ground truth v2")  # the targets
    assert key(image, gt, "scg", "steepest", None, None) != k
    name = train_ranker.pool_file(tmp_path, "msrc", "1_2_s", "scg-steepest", k).name
    assert name == f"scg-steepest_msrc_1_2_s-{k}.npz"


def test_arc_features_key_ingredients(tmp_path, image, monkeypatch):
    train_arcs = load_bench("train_arcs")
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
    # arcs of a registered source: keyed by its spec and the image scale
    g1 = train_arcs.arcs_key(image, gt, None, "gpb")
    assert g1 == train_arcs.arcs_key(image, gt, None, "gpb", 1.0)
    assert len({g1, train_arcs.arcs_key(image, gt, None, "gpb", 0.5), k3}) == 3
    monkeypatch.setattr(cache_mod, "code_version", lambda *m: "edited")
    assert train_arcs.arcs_key(image, gt, pb) != k3
    assert train_arcs.arcs_key(image, gt, None, "gpb") != g1
