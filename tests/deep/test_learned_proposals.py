"""Proposals on hierarchies of the learned contours (``bottomup.mcg.proposals(contours="learned")``)."""

import os

import numpy as np
import pytest

from bottomup.mcg import proposals
from bottomup.mcg.propose import hierarchy_for
from bottomup.mcg.ranking import load_ranker, ranker_path
from bottomup.pipeline import segment


def _img():
    rng = np.random.default_rng(2)
    img = 0.3 + 0.1 * rng.random((48, 56, 3))
    img[8:30, 10:32] = [0.9, 0.1, 0.1]
    img[24:44, 30:50] = [0.1, 0.2, 0.9]
    return img


def test_learned_rankers_shipped_and_selected():
    from bottomup.contours import get_source

    learned = get_source("learned")
    assert learned.ranker == "learned"
    for method in ("scg", "mcg"):
        path = ranker_path(method, learned.ranker)
        assert os.path.exists(path), path
        assert "learned" in os.path.basename(path)
        assert path != ranker_path(method, "gpb-steepest")
    with pytest.raises(ValueError, match="no shipped ranker"):
        ranker_path("scg", "hed")


def test_scg_learned_groups_the_learned_hierarchy_with_its_ranker():
    img = _img()
    h = hierarchy_for(img, "scg", contours="learned")
    # (torch's CPU kernels may differ in the last bits between calls)
    # learned contours come with learned arc scores, in SCG as in segment()
    np.testing.assert_allclose(h.to_ucm2(), segment(img, "learned").to_ucm2(), atol=1e-6)
    mean = hierarchy_for(img, "scg", contours="learned", arcs="mean")
    np.testing.assert_allclose(mean.to_ucm2(), segment(img, "learned", arcs="mean").to_ucm2(),
                               atol=1e-6)
    assert not np.allclose(mean.to_ucm2(), h.to_ucm2())
    a = proposals(img, n=15, contours="learned")
    b = proposals(img, n=15, hierarchy=h, ranker=load_ranker(ranker_path("scg", "learned")),
                  contours="learned")
    np.testing.assert_array_equal(a.leaf_sets, b.leaf_sets)
    assert 0 < len(a) <= 15
    # the red square is found: some proposal covers it with IoU > 0.8
    masks = a.masks()
    gt = np.zeros(img.shape[:2], bool)
    gt[8:30, 10:32] = True
    gt[24:44, 30:50] = False  # the blue square lies on top
    iou = (masks & gt).sum((1, 2)) / (masks | gt).sum((1, 2))
    assert iou.max() > 0.8


def test_mcg_learned_uses_single_scale_contours_per_level(monkeypatch):
    import deep.contours.source as api

    seen = []
    real = api.learned_contours

    def spy(image, **kw):
        seen.append((image.shape[:2], kw.get("scales")))
        return real(image, **kw)

    import bottomup.pipeline as pipeline

    scored = []
    real_rescore = pipeline.rescore_pieces

    def spy_rescore(image, *args):
        scored.append(image.shape[:2])
        return real_rescore(image, *args)

    monkeypatch.setattr(api, "learned_contours", spy)
    monkeypatch.setattr(pipeline, "rescore_pieces", spy_rescore)
    img = _img()
    h = hierarchy_for(img, "mcg", contours="learned")
    assert h.shape == img.shape[:2]
    levels = [s for s in seen if s[1] == (1.0,)]
    assert sorted(sh for sh, _ in levels) == sorted([(96, 112), (48, 56), (24, 28)])
    # every level's arcs get the learned scores (the shipped forest was trained on those)
    assert sorted(scored) == sorted(sh for sh, _ in levels)
    scored.clear()
    hierarchy_for(img, "mcg", contours="learned", arcs="mean")
    assert scored == []
    c = proposals(img, n=10, method="mcg", hierarchy=h, contours="learned")
    assert 0 < len(c) <= 10


def test_owt_with_learned_contours_is_refused():
    with pytest.raises(ValueError, match="`owt`"):
        proposals(_img(), n=5, owt="steepest", contours="learned")


def test_proposals_command_with_learned_contours(tmp_path):
    import argparse
    import json

    from PIL import Image

    from bottomup.mcg import _cli

    Image.fromarray((_img() * 255).astype(np.uint8)).save(tmp_path / "a.png")
    parser = argparse.ArgumentParser()
    _cli.register(parser.add_subparsers())
    args = parser.parse_args(["proposals", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"),
                              "-n", "6", "--contours", "learned", "--quiet"])
    assert args.func(args) == 0
    recs = json.loads((tmp_path / "out" / "a.json").read_text())  # a COCO results list
    record = json.loads((tmp_path / "out" / ".a.json.params.json").read_text())
    assert record["info"]["contours"] == "learned" and 1 <= len(recs) <= 6
    from bottomup.io import read_image

    ref = proposals(read_image(tmp_path / "a.png"), n=6, contours="learned")
    assert [r["bbox"] for r in recs] == [r["bbox"] for r in ref.to_coco(image_id="a")]
