"""The ``proposals`` folder job and command line (registered here as the integrator will)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from bottomup import jobs
from bottomup.masks import rle_to_masks


@pytest.fixture
def proposals_task(monkeypatch):
    monkeypatch.setitem(jobs.TASKS, "proposals", "bottomup.mcg._cli:proposals_task")


def test_proposals_job_writes_coco_json(tmp_path, proposals_task):
    from PIL import Image

    img = np.zeros((48, 64, 3), np.uint8)
    img[8:24, 8:30] = (255, 50, 50)
    Image.fromarray(img).save(tmp_path / "a.png")
    from bottomup.mcg import _cli

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    _cli.register(sub)
    args = parser.parse_args(["proposals", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"),
                              "-n", "7", "--quiet"])
    assert args.func(args) == 0
    recs = json.loads((tmp_path / "out" / "a.json").read_text())  # a COCO results list
    info = json.loads(jobs.record_path(tmp_path / "out" / "a.json").read_text())["info"]
    assert info["height"] == 48 and info["width"] == 64 and 1 <= len(recs) <= 7
    assert info["contours"] == "gpb" and info["image_id"] == "a"
    rec = recs[0]
    m = rle_to_masks({"size": rec["segmentation"]["size"],
                      "counts": rec["segmentation"]["counts"].encode()})
    assert m.shape == (48, 64) and m.any()
    args = parser.parse_args(["proposals", str(tmp_path / "a.png"), "--out", str(tmp_path / "o2"),
                              "-n", "-1", "--quiet"])
    assert args.func(args) == 2
