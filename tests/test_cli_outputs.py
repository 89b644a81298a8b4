"""What the command line writes (issue 26, items 2-5): ucm2 formats that every reader takes back,
labels and overlays to look at, COCO result lists that pycocotools loads, short reprs, the
first-run message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bottomup.cli import main
from bottomup.jobs import record_path


def _image():
    """A 26x34 picture with three flat regions (two strong edges)."""
    img = np.zeros((26, 34, 3), np.uint8)
    img[:, 17:] = (230, 40, 30)
    img[14:, :17] = (30, 40, 220)
    return img


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("in")
    cv2.imwrite(str(d / "shot.png"), _image()[..., ::-1])
    return d / "shot.png"


@pytest.fixture(scope="module")
def reference(shot):
    """The hierarchy `bottomup segment --preset fast` must write, from the Python API."""
    import bottomup
    from bottomup.contours import GPb
    from bottomup.io import read_image

    return bottomup.segment(read_image(shot), contours=GPb(preset="fast"))


def _gt(path, labels):
    import scipy.io as sio

    cell = np.empty((1, 1), dtype=object)
    b = np.zeros_like(labels, dtype=np.uint8)
    b[:, :-1] |= (labels[:, 1:] != labels[:, :-1]).astype(np.uint8)
    b[:-1, :] |= (labels[1:, :] != labels[:-1, :]).astype(np.uint8)
    cell[0, 0] = {"Segmentation": (labels + 1).astype(np.uint16), "Boundaries": b}
    sio.savemat(path, {"groundTruth": cell})


# --- item 2: every format segment writes, read back by every reader ------------------------------

@pytest.fixture(scope="module")
def segmented(shot, tmp_path_factory):
    """One `bottomup segment` folder per format."""
    outs = {}
    for fmt in ("mat", "npz", "png"):
        out = tmp_path_factory.mktemp(f"seg-{fmt}")
        assert main(["segment", str(shot), "--out", str(out), "--format", fmt, "--preset", "fast",
                     "--quiet"]) == 0
        outs[fmt] = out / f"shot.{fmt}"
    return outs


@pytest.mark.parametrize("fmt", ["mat", "npz", "png"])
def test_read_ucm2_reads_what_segment_writes(segmented, reference, fmt):
    from bottomup.hierarchy import Hierarchy
    from bottomup.io import read_ucm2

    want = reference.to_ucm2()
    got = read_ucm2(segmented[fmt])
    assert got.shape == (2 * 26 + 1, 2 * 34 + 1)
    # mat/npz exact; the 16-bit PNG to its quantisation step
    np.testing.assert_allclose(got, want, atol=0 if fmt != "png" else 0.5 / 65535)
    cut = Hierarchy.load(segmented[fmt]).cut(n_regions=3)
    ref = reference.cut(n_regions=3)
    # the same partition up to the numbering
    pairs = set(zip(cut.ravel().tolist(), ref.ravel().tolist(), strict=True))
    assert len(pairs) == len(np.unique(cut)) == len(np.unique(ref)) == 3


@pytest.mark.parametrize("fmt", ["mat", "npz", "png"])
def test_evaluate_reads_what_segment_writes(segmented, tmp_path, fmt, capsys):
    """`bottomup evaluate` scores each format as a ucm2 (boundary and region figures), equal to mat."""
    from bottomup.metrics.bsds import evaluate_image

    lab = np.zeros((26, 34), int)
    lab[:, 17:] = 1
    lab[14:, :17] = 2
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    _gt(gt_dir / "shot.mat", lab)
    res = evaluate_image(segmented[fmt], gt_dir / "shot.mat")
    assert res["kind"] == "ucm2" and res["region"] is not None
    ref = evaluate_image(segmented["mat"], gt_dir / "shot.mat")
    assert res["boundary"] == ref["boundary"]
    assert main(["evaluate", "--pred", str(segmented[fmt].parent), "--gt", str(gt_dir), "--no-cache",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "covering_ods" in out and "covering_ods     -" not in out


def test_evaluate_png_boundary_map_is_still_a_boundary_map(tmp_path):
    import cv2

    from bottomup.metrics.bsds import evaluate_image

    lab = np.zeros((26, 34), int)
    lab[:, 17:] = 1
    _gt(tmp_path / "a_gt.mat", lab)
    pb = np.zeros((26, 34), np.uint8)
    pb[:, 16] = 255
    cv2.imwrite(str(tmp_path / "a.png"), pb)
    assert evaluate_image(tmp_path / "a.png", tmp_path / "a_gt.mat")["kind"] == "pb"
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((30, 30), np.uint8))
    with pytest.raises(ValueError, match="b.png.*shape"):
        evaluate_image(tmp_path / "b.png", tmp_path / "a_gt.mat")


@pytest.mark.parametrize("fmt", ["mat", "npz", "png"])
def test_interactive_ucm_reads_what_segment_writes(segmented, reference, shot, tmp_path, fmt, capsys):
    import cv2

    from bottomup.interactive import segment as complete

    seeds = np.zeros((26, 34), np.uint8)
    seeds[5, 5], seeds[5, 30], seeds[20, 5] = 1, 2, 3
    cv2.imwrite(str(tmp_path / "seeds.png"), seeds)
    out = tmp_path / "labels.png"
    assert main(["interactive", str(shot), str(tmp_path / "seeds.png"), "--ucm", str(segmented[fmt]),
                 "--out", str(out)]) == 0
    lab = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    want = np.ones((26, 34), np.uint8)
    want[:, 17:] = 2
    want[14:, :17] = 3
    np.testing.assert_array_equal(lab, complete(reference, seeds))  # as from the hierarchy itself
    assert (lab == want).mean() > 0.9  # about the three flat regions
    over = cv2.imread(str(tmp_path / "labels_overlay.png"))[..., ::-1]
    from bottomup.viz import overlay_labels

    np.testing.assert_array_equal(over, overlay_labels(_image(), lab))


# --- item 3: labels and overlays ----------------------------------------------------------------

def test_segment_cut_writes_colour_labels_and_overlay(shot, reference, tmp_path):
    import cv2

    from bottomup.viz import color_labels, draw_boundaries

    out = tmp_path / "o"
    assert main(["segment", str(shot), "--out", str(out), "--preset", "fast", "--cut", "3", "--quiet"]) == 0
    labels = reference.cut(n_regions=3)
    col = cv2.imread(str(out / "shot_labels.png"))[..., ::-1]
    np.testing.assert_array_equal(col, color_labels(labels))
    assert len(np.unique(col.reshape(-1, 3), axis=0)) == 3
    over = cv2.imread(str(out / "shot_overlay.png"))[..., ::-1]
    np.testing.assert_array_equal(over, draw_boundaries(_image(), labels))
    red = (over == (255, 40, 40)).all(axis=2)
    assert red.any() and (over[~red] == _image()[~red]).all()  # the image elsewhere
    rec = json.loads(record_path(out / "shot.mat").read_text())
    assert rec["params"]["cut"] == 3 and rec["info"]["outputs"] == ["shot_labels.png", "shot_overlay.png"]

    out16 = tmp_path / "o16"
    assert main(["segment", str(shot), "--out", str(out16), "--preset", "fast", "--threshold", "0.5",
                 "--labels-16bit", "--quiet"]) == 0
    raw = cv2.imread(str(out16 / "shot_labels.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, reference.cut(threshold=0.5))
    assert main(["segment", str(shot), "--out", str(tmp_path / "x"), "--labels-16bit", "--quiet"]) == 2


def test_viz_by_hand():
    from bottomup.viz import as_rgb8, color_labels, draw_boundaries, overlay_labels, palette

    pal = palette(50)
    assert pal.shape == (50, 3) and len(np.unique(pal, axis=0)) == 50
    np.testing.assert_array_equal(palette(5), pal[:5])  # a label's colour does not depend on n
    lab = np.array([[0, 0, 1, 1]] * 3)
    img = np.zeros((3, 4, 3))
    b = draw_boundaries(img, lab, color=(9, 8, 7))
    # a vertical split: the column left of the change
    np.testing.assert_array_equal((b == (9, 8, 7)).all(axis=2), np.array([[0, 1, 0, 0]] * 3, bool))
    from bottomup.viz import boundary_mask

    lab2 = np.array([[0, 0, 0], [0, 5, 0], [0, 0, 0]])  # an island: its left and upper neighbours too
    np.testing.assert_array_equal(boundary_mask(lab2), [[0, 1, 0], [1, 1, 0], [0, 0, 0]])
    o = overlay_labels(np.full((3, 4, 3), 255, np.uint8), lab, alpha=1.0, boundaries=False)
    np.testing.assert_array_equal(o, color_labels(lab))
    assert as_rgb8(np.full((2, 2), 65535, np.uint16)).tolist() == [[[255] * 3] * 2] * 2
    with pytest.raises(ValueError, match="labels"):
        color_labels(np.zeros((2, 2)))


def test_proposals_overlay_and_coco_results_load_in_pycocotools(tmp_path):
    """`bottomup proposals --overlay 3`: the JSON is a COCO results list that COCO.loadRes takes,
    the metadata is in the record, the scores lie in [0, 1] in rank order, the overlay has a legend."""
    import cv2
    from pycocotools.coco import COCO

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "000123.png"), _image()[..., ::-1])
    out = tmp_path / "out"
    assert main(["proposals", str(src), "--out", str(out), "-n", "6", "--overlay", "3", "--quiet"]) == 0
    recs = json.loads((out / "000123.json").read_text())
    assert isinstance(recs, list) and 1 <= len(recs) <= 6
    info = json.loads(record_path(out / "000123.json").read_text())["info"]
    assert info["image_id"] == 123 and (info["height"], info["width"]) == (26, 34)
    gt = COCO()
    gt.dataset = {"images": [{"id": info["image_id"], "height": info["height"], "width": info["width"]}],
                  "categories": [{"id": 1, "name": "object"}], "annotations": []}
    gt.createIndex()
    res = gt.loadRes(str(out / "000123.json"))
    anns = res.loadAnns(res.getAnnIds(imgIds=[123]))
    assert len(anns) == len(recs) and all(a["area"] > 0 for a in anns)
    scores = [r["score"] for r in recs]
    assert all(0 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    over = cv2.imread(str(out / "000123_overlay.png"))
    assert over.shape[0] >= 26 and over.shape[1] == 34 + 104
    assert info["outputs"] == ["000123_overlay.png"]


def test_unit_scores_by_hand():
    from bottomup.mcg._cli import unit_scores

    # theta * s - (1 - theta) * J for (s, J) = (0, 1), (0, 0), (1, 0), (0.5, 0.5)
    mmr = np.array([-0.3, 0.0, 0.7, 0.2])
    np.testing.assert_allclose(unit_scores(mmr), [0.0, 0.3, 1.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(unit_scores([0.2, 0.9], theta=1.0), [0.2, 0.9])


# --- item 5: reprs and the first-run message ----------------------------------------------------

def test_candidates_repr_is_one_short_line():
    from bottomup.mcg import Candidates

    rng = np.random.default_rng(0)
    lab = rng.integers(0, 40, (30, 30)).astype(np.int32)
    lab[0, :40] = np.arange(30)  # every label present
    lab.ravel()[:40] = np.arange(40)
    sets = rng.random((1000, 40)) < 0.2
    c = Candidates(lab, sets, np.tile([0, 0, 30, 30], (1000, 1)), np.linspace(0.7, -0.3, 1000))
    r = repr(c)
    assert r == "Candidates(n=1000, shape=(30, 30), n_leaves=40, scores=[-0.3, 0.7])"
    empty = Candidates(lab, np.zeros((0, 40), bool), np.zeros((0, 4)), np.zeros(0))
    assert repr(empty) == "Candidates(n=0, shape=(30, 30), n_leaves=40)"


def test_kernels_cold_until_compiled(tmp_path, monkeypatch):
    """A fresh module's cached kernel is cold, and warm once it compiled (numba's own index)."""
    import importlib
    import sys

    from bottomup.cli import kernels_cold

    (tmp_path / "coldmod26.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("coldmod26")
    try:
        if getattr(mod.twice, "_cache", None) is None or type(mod.twice._cache).__name__ == "NullCache":
            pytest.skip("numba cannot cache here")
        assert kernels_cold(["coldmod26:twice"])
        assert mod.twice(3) == 6
        assert not kernels_cold(["coldmod26:twice"])
        assert not kernels_cold([])  # nothing to compile: nothing to say
    finally:
        sys.modules.pop("coldmod26", None)


def test_first_run_message_only_when_cold_and_quiet_keeps_the_summary(tmp_path, monkeypatch, capsys):
    import cv2

    from bottomup import cli
    from bottomup.jobs import TASKS

    monkeypatch.setitem(TASKS, "segment", "tests.jobs_tasks:mean_color_any_params")  # fast
    cv2.imwrite(str(tmp_path / "a.png"), _image())
    calls = []
    monkeypatch.setattr(cli, "kernels_cold", lambda k: calls.append(k) or True)
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "o1"), "--preset", "fast"]) == 0
    cap = capsys.readouterr()
    assert "compiling kernels, once" in cap.err and calls == [cli.HOT_KERNELS["segment"]]
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "o2"), "--preset", "fast",
                 "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "compiling" not in cap.err and "1 done, 0 skipped" in cap.out  # the summary stays
    monkeypatch.setattr(cli, "kernels_cold", lambda k: False)
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "o3"), "--preset", "fast"]) == 0
    assert "compiling" not in capsys.readouterr().err


def test_hot_kernels_exist():
    import importlib

    for specs in __import__("bottomup.cli", fromlist=["HOT_KERNELS"]).HOT_KERNELS.values():
        for spec in specs:
            mod, name = spec.split(":")
            assert hasattr(importlib.import_module(mod), name), spec


def test_model_files_of_the_shipped_tasks():
    from bottomup.jobs import model_files

    names = [p.name for p in model_files("proposals", {"n": 5, "method": "mcg"})]
    assert names == ["mcg_ranker_steepest.npz"]
    assert model_files("segment", {"contours": "gpb", "arcs": "mean", "preset": "fast"}) == []
    arcs = model_files("segment", {"contours": "gpb", "arcs": "learned", "preset": "fast"})
    assert [p.name for p in arcs] == ["arcs_learned.npz"] and arcs[0].is_file()
    assert all(Path(p).is_file() for p in model_files("proposals", {"n": 5, "method": "scg"}))


def test_model_files_of_the_learned_sources_and_the_deep_task():
    pytest.importorskip("torch")
    from bottomup.jobs import model_files

    seg = model_files("segment", {"contours": "learned", "arcs": "learned", "multiscale": False})
    assert sorted(p.name for p in seg) == ["arcs_learned.npz", "contours_lite0.pt"]
    props = model_files("proposals", {"n": 5, "method": "scg", "contours": "learned"})
    want = ["arcs_learned.npz", "contours_lite0.pt", "scg_ranker_learned.npz"]
    assert sorted(p.name for p in props) == want
    heads = model_files("deep", {"device": "cpu", "min_score": 0.0})
    assert heads[0].name == "heads_msrc21.pt" and len(heads) == 3 and all(p.is_file() for p in heads)


def test_instances_repr_is_one_short_line():
    pytest.importorskip("torch")
    from deep.segmenter import Instances

    masks = np.zeros((300, 20, 30), bool)
    inst = Instances(masks, np.arange(300) % 3 + 1, np.linspace(0.9, 0.1, 300))
    assert repr(inst) == "Instances(n=300, shape=(20, 30), classes=[1, 2, 3], scores=[0.1, 0.9])"
    empty = Instances(np.zeros((0, 20, 30), bool), np.zeros(0, np.int64), np.zeros(0))
    assert repr(empty) == "Instances(n=0, shape=(20, 30))"
