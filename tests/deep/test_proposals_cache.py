"""The deep heads' proposal cache (``deep.training.cache_proposals``): reused only under the same
key (n, preset, owt, image, ranker file, code); any one of them changed recomputes."""

from __future__ import annotations

import numpy as np
import pytest

import bottomup.mcg
import bottomup.mcg.ranking
from bottomup.io import cache as cache_mod
from bottomup.mcg import Candidates
from deep.data import SegmentationDataset, write_categories, write_sample
from deep.training import cache_proposals, load_proposals, proposals_key, save_proposals, stored_key

H, W = 8, 10


@pytest.fixture
def setup(tmp_path, monkeypatch):
    root, work = tmp_path / "layout", tmp_path / "work"
    img = np.zeros((H, W, 3))
    img[:, W // 2:] = 0.8
    write_sample(root, "im0", img, np.zeros((H, W), np.uint8), np.zeros((0, H, W), bool), [])
    write_categories(root, ["ground", "thing"], things=[1])
    (root / "train.txt").write_text("im0\n")
    ds = SegmentationDataset(root, "train")
    ranker = tmp_path / "ranker.npz"
    ranker.write_bytes(b"forest v1")
    monkeypatch.setattr(bottomup.mcg.ranking, "ranker_path", lambda owt, preset, contours=None: str(ranker))
    calls = []

    def fake_proposals(image, n=1000, method="scg", contours=None):  # what the cache would store
        calls.append((n, method, getattr(contours, "owt", None)))
        lab = (np.arange(W)[None, :] >= W // 2).astype(np.int32).repeat(H, 0)
        sets = np.array([[True, False], [False, True]][: max(1, min(n, 2))])
        boxes = np.array([[0, 0, H, W // 2], [0, W // 2, H, W]])[: len(sets)]
        return Candidates(lab, sets, boxes, np.linspace(1, 0.5, len(sets)))

    monkeypatch.setattr(bottomup.mcg, "proposals", fake_proposals)
    return ds, work, ranker, calls


def test_a_changed_ingredient_recomputes(setup, monkeypatch):
    ds, work, ranker, calls = setup

    def run(**kw):
        before = len(calls)
        cache_proposals(ds, work, progress=None, **kw)
        return len(calls) - before  # 1: a miss, 0: a hit

    assert run(n=1000, preset="scg", owt="plain") == 1
    assert run(n=1000, preset="scg", owt="plain") == 0  # unchanged: a hit
    assert run(n=1, preset="scg", owt="plain") == 1  # another proposal count
    assert len(load_proposals(work, "im0")) == 1  # ... and its result replaced the old one
    assert run(n=1, preset="scg", owt="steepest") == 1  # --owt
    assert run(n=1, preset="mcg", owt="steepest") == 1
    assert run(n=1, preset="mcg", owt="steepest") == 0
    ranker.write_bytes(b"forest v2")  # a retrained ranker
    assert run(n=1, preset="mcg", owt="steepest") == 1
    img_path = ds.image_path("im0")
    img_path.write_bytes(img_path.read_bytes() + b"\0")  # another image under the same name
    assert run(n=1, preset="mcg", owt="steepest") == 1
    monkeypatch.setattr(cache_mod, "code_version", lambda *m: "edited")  # the code
    assert run(n=1, preset="mcg", owt="steepest") == 1
    assert run(n=1, preset="mcg", owt="steepest") == 0


def test_files_without_a_key_are_recomputed(setup):
    ds, work, _, calls = setup
    c = bottomup.mcg.proposals(None)  # the fake
    (work / "props").mkdir(parents=True)
    save_proposals(work / "props" / "im0.npz", c)  # an old cache file: no key
    assert stored_key(work / "props" / "im0.npz") is None
    cache_proposals(ds, work, progress=None)
    assert len(calls) == 2
    assert stored_key(work / "props" / "im0.npz") == proposals_key(ds.image_path("im0"))
    (work / "props" / "im0.npz").write_bytes(b"truncated")  # a damaged file: recomputed too
    assert stored_key(work / "props" / "im0.npz") is None
    cache_proposals(ds, work, progress=None)
    assert len(calls) == 3 and len(load_proposals(work, "im0")) == 2


def test_owt_none_is_the_proposals_default(setup):
    ds, *_ = setup
    p = ds.image_path("im0")
    assert proposals_key(p) == proposals_key(p, owt="steepest")  # the proposals' gPb default
    assert proposals_key(p, n=1000) != proposals_key(p, n=999)
