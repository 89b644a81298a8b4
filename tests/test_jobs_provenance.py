"""Provenance-safe folder jobs (issue 26, item 1): each output keeps a record of the parameters and
model files that made it; a rerun with others stops before any work, --overwrite replaces them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bottomup.cli import main
from bottomup.jobs import TASKS, ProvenanceError, model_files, record_path, run_job

TASKS.setdefault("test-scaled", "tests.jobs_tasks:scaled_mean")


@pytest.fixture
def image_dir(tmp_path):
    import cv2

    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        cv2.imwrite(str(d / f"im{k}.png"), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    return d


def _state(out: Path) -> dict:
    """Every file in the folder (records and manifest included) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_same_parameters_skip_other_parameters_stop_before_any_work(image_dir, tmp_path):
    out = tmp_path / "out"
    res = run_job("test-scaled", [image_dir], out, ext=".npy", params={"scale": 2.0}, progress=False)
    assert len(res.done) == 3
    rec = json.loads(record_path(out / "im0.npy").read_text())
    assert rec["params"] == {"scale": 2.0} and rec["complete"] and rec["info"] == {"height": 24, "width": 32}
    assert rec["task"] == "test-scaled" and rec["output"] == "im0.npy"
    before = _state(out)

    res = run_job("test-scaled", [image_dir], out, ext=".npy", params={"scale": 2.0}, progress=False)
    assert len(res.skipped) == 3 and not res.done

    before = _state(out)  # the manifest of the rerun, the rest untouched
    with pytest.raises(ProvenanceError) as err:
        run_job("test-scaled", [image_dir], out, ext=".npy", params={"scale": 3.0}, progress=False)
    msg = str(err.value)
    assert "3 of the 3 outputs" in msg and "scale: 2.0 in the existing output(s), 3.0 now" in msg
    assert "--overwrite" in msg and "im0.npy" in msg
    assert _state(out) == before  # nothing written: outputs, records and manifest as they were

    # a new input alongside the old ones: still refused, and the new one is not computed either
    import shutil

    shutil.copy(image_dir / "im0.png", image_dir / "new.png")
    with pytest.raises(ProvenanceError):
        run_job("test-scaled", [image_dir], out, ext=".npy", params={"scale": 3.0}, progress=False)
    assert not (out / "new.npy").exists()

    res = run_job("test-scaled", [image_dir], out, ext=".npy", params={"scale": 3.0}, progress=False,
                  overwrite=True)
    assert len(res.done) == 4 and not res.skipped
    from bottomup.io import read_image

    for k in range(3):
        assert json.loads(record_path(out / f"im{k}.npy").read_text())["params"] == {"scale": 3.0}
        want = 3.0 * read_image(image_dir / f"im{k}.png").mean(axis=(0, 1))
        np.testing.assert_allclose(np.load(out / f"im{k}.npy"), want)  # recomputed, not kept
    man = json.loads(res.manifest.read_text())
    assert man["params"] == {"scale": 3.0} and man["n_done"] == 4 and man["overwrite"] is True


def test_manifest_never_describes_outputs_of_other_parameters(image_dir, tmp_path):
    """The issue's case: a rerun with other options used to report 'skipped' and rewrite the
    manifest with the new options over the old outputs."""
    out = tmp_path / "out"
    run_job("test-scaled", [image_dir], out, ext=".npy", params={"scale": 2.0}, progress=False)
    man_before = (out / "manifest-test-scaled.json").read_bytes()
    with pytest.raises(ProvenanceError):
        run_job("test-scaled", [image_dir], out, ext=".npy", params={"scale": 5.0}, progress=False)
    assert (out / "manifest-test-scaled.json").read_bytes() == man_before
    # a subset rerun with the same parameters: the skipped ones keep their own record
    rec = record_path(out / "im1.npy").read_bytes()
    res = run_job("test-scaled", [image_dir / "im1.png"], out, ext=".npy", params={"scale": 2.0},
                  progress=False)
    assert res.skipped == [str(image_dir / "im1.png")]
    assert record_path(out / "im1.npy").read_bytes() == rec


def test_model_file_hashes_are_part_of_the_provenance(image_dir, tmp_path):
    model = tmp_path / "weights.bin"
    model.write_bytes(b"version 1")
    out = tmp_path / "out"
    params = {"model": str(model)}
    assert model_files("test-scaled", params) == [model]
    run_job("test-scaled", [image_dir], out, ext=".npy", params=params, progress=False)
    rec = json.loads(record_path(out / "im2.npy").read_text())
    import hashlib

    assert rec["models"] == {"weights.bin": hashlib.sha256(b"version 1").hexdigest()}
    again = run_job("test-scaled", [image_dir], out, ext=".npy", params=params, progress=False)
    assert len(again.skipped) == 3
    model.write_bytes(b"version 2, retrained")  # same path, other weights
    with pytest.raises(ProvenanceError, match=r"model file weights\.bin \(sha256\)"):
        run_job("test-scaled", [image_dir], out, ext=".npy", params=params, progress=False)
    model.unlink()
    with pytest.raises(FileNotFoundError, match="weights.bin"):
        run_job("test-scaled", [image_dir], out, ext=".npy", params=params, progress=False)


def test_outputs_without_record_are_unknown_provenance(image_dir, tmp_path):
    out = tmp_path / "out"
    run_job("test-scaled", [image_dir], out, ext=".npy", progress=False)
    record_path(out / "im1.npy").unlink()  # as written before records existed
    (out / "im0.npy.params.json").write_text("{}")  # not a record name: ignored
    record_path(out / "im2.npy").write_text("{broken")  # a damaged record counts as none
    with pytest.raises(ProvenanceError, match=r"2 output\(s\) have no parameter record.*unknown provenance"):
        run_job("test-scaled", [image_dir], out, ext=".npy", progress=False)
    res = run_job("test-scaled", [image_dir], out, ext=".npy", progress=False, overwrite=True)
    assert len(res.done) == 2 and len(res.skipped) == 1  # the one with a matching record is kept
    assert json.loads(record_path(out / "im1.npy").read_text())["complete"]


def test_overwrite_removes_the_files_the_old_record_lists(image_dir, tmp_path):
    out = tmp_path / "out"
    run_job("test-scaled", [image_dir], out, ext=".npy", params={"extra": True}, progress=False)
    assert (out / "im0_extra.npy").exists()
    run_job("test-scaled", [image_dir], out, ext=".npy", params={"extra": False}, progress=False,
            overwrite=True)
    assert not list(out.glob("*_extra.npy"))  # no picture of the old parameters left beside the new


def test_failed_task_leaves_no_record(image_dir, tmp_path):
    out = tmp_path / "out"
    res = run_job("test-scaled", [image_dir], out, ext=".npy", params={"fail_after_start": True},
                  progress=False)
    assert len(res.failed) == 3
    assert sorted(p.name for p in out.iterdir()) == ["manifest-test-scaled.json"]


def test_empty_input_is_an_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    with pytest.raises(FileNotFoundError, match="no images found"):
        run_job("test-scaled", [empty], tmp_path / "out", ext=".npy", progress=False)
    assert main(["segment", str(empty), "--out", str(tmp_path / "o2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no images found" in err and str(empty) in err


def test_segment_cli_rerun_with_other_options(tmp_path, capsys):
    """The reported case, on the real command: --preset fast, then --preset fast --seed 1."""
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    img = np.zeros((24, 30, 3), np.uint8)
    img[:, 14:] = (220, 60, 40)
    cv2.imwrite(str(src / "a.png"), img)
    out = tmp_path / "out"
    assert main(["segment", str(src), "--out", str(out), "--preset", "fast", "--quiet"]) == 0
    ucm_bytes = (out / "a.mat").read_bytes()
    capsys.readouterr()
    assert main(["segment", str(src), "--out", str(out), "--preset", "fast", "--quiet"]) == 0
    assert re.search(r"0 done, 1 skipped", capsys.readouterr().out)
    assert main(["segment", str(src), "--out", str(out), "--preset", "fast", "--seed", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "seed: 0 in the existing output(s), 1 now (a.mat)" in err and "--overwrite" in err
    assert (out / "a.mat").read_bytes() == ucm_bytes
    assert json.loads((out / "manifest-segment.json").read_text())["params"]["seed"] == 0
    assert main(["segment", str(src), "--out", str(out), "--preset", "fast", "--seed", "1", "--quiet",
                 "--overwrite"]) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().out
    rec = json.loads(record_path(out / "a.mat").read_text())
    assert rec["params"]["seed"] == 1 and rec["info"]["height"] == 24
    assert json.loads((out / "manifest-segment.json").read_text())["params"]["seed"] == 1
