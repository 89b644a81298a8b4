"""Two job processes writing one output folder at once (issue 21, item 6).

Each output is written to a temporary file with a name unique to the call (``mkstemp``) and renamed
into place, and so is the manifest: two writers never share a temporary file, and the last rename
wins with a complete file. These tests start two real processes on the same folder and check that
every output and the manifest are complete and readable, with no temporary file left behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _images(d: Path, n: int, shape=(24, 32, 3)) -> Path:
    import cv2

    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        cv2.imwrite(str(d / f"im{k:02d}.png"), rng.integers(0, 255, shape, dtype=np.uint8))
    return d


def _no_temporaries(out: Path):
    """No temporary file left; the hidden files are the outputs' complete provenance records."""
    from bottomup.jobs import record_path

    left = [p.name for p in out.iterdir() if ".part" in p.name
            or (p.name.startswith(".") and not p.name.endswith(".params.json"))]
    assert not left, f"temporary files left behind: {left}"
    for p in out.iterdir():
        if p.name.startswith(".") and p.name.endswith(".params.json"):
            output = out / p.name[1:-len(".params.json")]
            assert output.exists() and record_path(output) == p, p.name
            assert json.loads(p.read_text())["complete"], p.name


def _manifest_ok(out: Path, task: str, n: int):
    man = json.loads((out / f"manifest-{task}.json").read_text())  # complete JSON, not interleaved
    assert man["n_failed"] == 0 and man["n_inputs"] == n
    assert man["n_done"] + man["n_skipped"] == n
    names = {Path(r["input"]).name for r in man["done"]} | {Path(p).name for p in man["skipped"]}
    assert len(names) == n
    return man


_RUNNER = """
import sys, time
sys.path.insert(0, {root!r})
from bottomup.jobs import TASKS, run_job
TASKS['test-slow-write'] = 'tests.jobs_tasks:mean_color_slow_write'
open({go!r} + '.ready.' + str(__import__('os').getpid()), 'w').close()
while not __import__('os').path.exists({go!r}):
    time.sleep(0.005)
res = run_job('test-slow-write', [{src!r}], {out!r}, ext='.npy', progress=False)
print(len(res.done), len(res.skipped), len(res.failed))
"""


def test_two_job_processes_share_an_output_folder(tmp_path):
    """Fast variant (a tiny task): both processes start on the same signal and race on every image.

    The task writes each output in two halves 100 ms apart (most of its time), so the two
    processes are inside the same output's write at once; with a temporary name shared between processes (say
    ``.im00.part.npy``) this test sees torn or missing files.
    """
    from bottomup.jobs import TASKS, run_job

    TASKS.setdefault("test-mean", "tests.jobs_tasks:mean_color")
    src = _images(tmp_path / "in", 8)
    out, go = tmp_path / "out", tmp_path / "go"
    code = _RUNNER.format(root=str(ROOT), go=str(go), src=str(src), out=str(out))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("go.ready.*"))) < 2 and time.time() < deadline:
        time.sleep(0.01)
    go.touch()  # both are waiting: they start together
    counts = []
    for p in procs:
        stdout, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        counts.append(tuple(map(int, stdout.split())))
    assert all(c[2] == 0 for c in counts), f"(done, skipped, failed) per process: {counts}"
    assert sum(c[0] for c in counts) > 8, f"the processes did not overlap: {counts}"
    ref = tmp_path / "ref"
    run_job("test-mean", [src], ref, ext=".npy", progress=False)
    for p in ref.glob("*.npy"):
        np.testing.assert_array_equal(np.load(out / p.name), np.load(p))
    assert len(list(out.glob("*.npy"))) == 8
    _no_temporaries(out)
    _manifest_ok(out, "test-slow-write", 8)


@pytest.mark.slow
def test_two_bottomup_segment_processes_share_an_output_folder(tmp_path):
    """The real command: two ``bottomup segment --preset fast`` processes on 3 tiny images at once."""
    from bottomup import segment
    from bottomup.io import read_image, read_ucm2

    src = _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    cmd = [sys.executable, "-m", "bottomup", "segment", str(src), "--out", str(out), "--preset", "fast",
           "--quiet"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    done = 0
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-2000:]
        m = re.search(r"(\d+) done, (\d+) skipped \(already done\), 0 failed", stdout)
        assert m, stdout
        done += int(m.group(1))
    assert done > 3, "the two processes did not overlap on any image"
    for img in sorted(src.glob("*.png")):
        want = segment(read_image(img), "fast").to_ucm2()
        np.testing.assert_array_equal(read_ucm2(out / f"{img.stem}.mat"), want)
    _no_temporaries(out)
    _manifest_ok(out, "segment", 3)
