"""Folder jobs: resume after SIGKILL, failures listed, atomic outputs, Dask with a dying worker."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bottomup.jobs import TASKS, atomic_path, list_images, run_job

TASKS.setdefault("test-mean", "tests.jobs_tasks:mean_color")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def image_dir(tmp_path):
    import cv2

    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(8):
        cv2.imwrite(str(d / f"im{k:02d}.png"), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    return d


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.npy"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_run_skip_and_manifest(image_dir, tmp_path):
    out = tmp_path / "out"
    res = run_job("test-mean", [image_dir], out, ext=".npy", progress=False)
    assert res.ok and len(res.done) == 8 and not res.skipped
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    assert len(first) == 8
    res2 = run_job("test-mean", [image_dir], out, ext=".npy", progress=False)
    assert len(res2.skipped) == 8 and not res2.done
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")} == first
    man = json.loads((out / "manifest-test-mean.json").read_text())
    assert man["n_skipped"] == 8 and "numpy" in man["versions"]


def test_unreadable_image_is_reported_and_rest_finish(image_dir, tmp_path):
    (image_dir / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    res = run_job("test-mean", [image_dir], out, ext=".npy", progress=False)
    assert len(res.done) == 8 and len(res.failed) == 1
    assert "broken.png" in res.failed[0]["input"] and "decode" in res.failed[0]["error"]
    man = json.loads(res.manifest.read_text())
    assert man["failed"][0]["input"].endswith("broken.png")
    assert not (out / "broken.npy").exists()


def test_errors_at_once(image_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="not writable"):
        run_job("test-mean", [image_dir], blocker / "sub", ext=".npy", progress=False)
    with pytest.raises(ValueError, match="unknown task"):
        run_job("nope", [image_dir], tmp_path / "o", ext=".npy", progress=False)
    with pytest.raises(FileNotFoundError):
        list_images([tmp_path / "missing"])


def test_resume_after_sigkill(image_dir, tmp_path):
    out = tmp_path / "out"
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from bottomup.jobs import TASKS, run_job\n"
        "TASKS['test-mean'] = 'tests.jobs_tasks:mean_color'\n"
        f"run_job('test-mean', [{str(image_dir)!r}], {str(out)!r}, ext='.npy', params={{'delay': 0.4}},"
        " workers=2, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*.npy"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    assert 0 < len(finished) < 8, "the kill should land halfway"
    # the same parameters as the killed run (its records say delay=0.4; others would be refused)
    res = run_job("test-mean", [image_dir], out, ext=".npy", params={"delay": 0.4}, progress=False)
    assert len(res.skipped) == len(finished) and len(res.done) == 8 - len(finished)
    for name, mtime in finished.items():
        assert (out / name).stat().st_mtime_ns == mtime  # not recomputed
    ref = tmp_path / "ref"
    run_job("test-mean", [image_dir], ref, ext=".npy", progress=False)
    for p in ref.glob("*.npy"):
        np.testing.assert_array_equal(np.load(p), np.load(out / p.name))  # every output valid
    assert not [p for p in out.iterdir() if ".part" in p.name]


def _add_path(p):
    if p not in sys.path:
        sys.path.insert(0, p)


def test_dask_cluster_with_a_dying_worker(image_dir, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    # a restarted worker must import the test task too
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    local = tmp_path / "local"
    run_job("test-mean", [image_dir], local, ext=".npy", progress=False)
    out = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        client.run(_add_path, str(ROOT))
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]

        def kill_soon():
            time.sleep(1.0)
            os.kill(victim, signal.SIGKILL)  # the nanny restarts it; its tasks are retried

        import threading

        th = threading.Thread(target=kill_soon)
        th.start()
        res = run_job("test-mean", [image_dir], out, ext=".npy", params={"delay": 0.3},
                      scheduler=client, progress=False, retries=3)
        th.join()
        assert victim not in client.run(os.getpid).values()  # the worker really died
    assert res.ok, res.failed
    for p in local.glob("*.npy"):
        assert (out / p.name).read_bytes() == p.read_bytes()


def test_map_unordered_in_processes_and_here(capsys):
    from bottomup.jobs import map_unordered, stderr_counter

    items = list(range(-6, 5))
    want = sorted(abs(i) for i in items)
    calls = []
    got = list(map_unordered(abs, items, 2, progress=lambda i, n: calls.append((i, n)), every=4))
    assert sorted(got) == want  # completion order, every result once
    assert calls == [(4, 11), (8, 11), (11, 11)]
    assert list(map_unordered(abs, items)) == [abs(i) for i in items]  # here: in order
    list(map_unordered(abs, [1, -2], progress=stderr_counter("arcs")))
    assert capsys.readouterr().err == "\rarcs 1/2\rarcs 2/2\n"
    with pytest.raises(ValueError, match="`workers` must be at least 1, got 0"):
        list(map_unordered(abs, items, 0))
    with pytest.raises(TypeError):  # a worker's error reaches the caller
        list(map_unordered(abs, [1, "x"], 2))
