"""A real Dask cluster: ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 run
``bottomup segment --scheduler tcp://...``; one worker is killed mid-job and the outputs are still
byte-identical to a local run.

Slow tier: it starts four Python processes and the ``segment`` task (fast preset) on 8 images.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
N_IMAGES = 8


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_images(folder: Path) -> None:
    """8 of scikit-image's bundled images (no download), at 240 x 360."""
    import cv2
    from skimage import data
    from skimage.transform import resize

    folder.mkdir()
    names = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
             "immunohistochemistry", "camera")
    for name in names[:N_IMAGES]:
        img = np.atleast_3d(getattr(data, name)())[..., :3]
        small = resize(img / 255.0, (240, 360), anti_aliasing=True)
        rgb = np.repeat(small, 3, axis=2) if small.shape[2] == 1 else small
        bgr = (np.clip(rgb[..., ::-1], 0, 1) * 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"{name}.png"), bgr)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _start(args, cwd: Path, log: Path) -> subprocess.Popen:
    # own session, so that killing it takes its children (the nanny's worker process) with it
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=cwd, env=_env(),
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _segment(inputs: str, out: str, cwd: Path, *extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bottomup", "segment", inputs, "--out", out, "--preset", "fast",
           "--format", "png", "--quiet", *extra]
    return subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*.png") if not p.name.startswith(".")}


def test_segment_on_a_dask_cluster_with_a_killed_worker(tmp_path):
    distributed = pytest.importorskip("distributed")
    job = tmp_path / "job"  # the CLI runs here, with relative paths
    job.mkdir()
    _write_images(job / "imgs")
    local = _segment("imgs", "local", job)
    out, err = local.communicate(timeout=600)
    assert local.returncode == 0, out.decode() + err.decode()
    expected = _outputs(job / "local")
    assert len(expected) == N_IMAGES

    # the cluster's processes run from elsewhere: a relative path would not resolve there
    cluster_dir = tmp_path / "cluster"
    cluster_dir.mkdir()
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    job_proc = None
    try:
        procs.append(_start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                            cluster_dir, tmp_path / "scheduler.log"))
        for k in range(2):
            procs.append(_start(["worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                 "--host", "127.0.0.1", "--local-directory", str(cluster_dir / f"w{k}")],
                                cluster_dir, tmp_path / f"worker{k}.log"))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            pid_of = client.run(os.getpid)  # worker address -> pid
            assert len(pid_of) == 2
            worker_pids = set(pid_of.values())
            job_proc = _segment("imgs", "dask", job, "--scheduler", address)
            deadline = time.time() + 600
            while time.time() < deadline and not _outputs(job / "dask") and job_proc.poll() is None:
                time.sleep(0.01)
            done_at_kill = len(_outputs(job / "dask"))
            busy = {addr: keys for addr, keys in client.processing().items() if keys}
            # kill a worker that is running a task of the job; its process is in the process group
            # of the `dask worker` we started (its own session): kill the worker with its nanny
            victim_addr = sorted(busy)[0] if busy else sorted(pid_of)[0]
            victim = next(p for p in procs[1:] if os.getpgid(pid_of[victim_addr]) == p.pid)
            os.killpg(victim.pid, signal.SIGKILL)  # no restart: the other worker must take over
            victim.wait(timeout=10)
            survivor = worker_pids - {pid_of[victim_addr]}
            out, err = job_proc.communicate(timeout=600)
        log = out.decode() + err.decode()
        assert 0 < done_at_kill < N_IMAGES, f"the kill should land mid-job ({done_at_kill} done)\n{log}"
        assert victim_addr in busy, f"the killed worker was running nothing: {busy}"
        assert job_proc.returncode == 0, log
    finally:
        if job_proc is not None and job_proc.poll() is None:
            job_proc.kill()
            job_proc.wait(timeout=10)
        for p in procs:
            _stop(p)
    assert all(p.poll() is not None for p in procs)

    got = _outputs(job / "dask")
    assert sorted(got) == sorted(expected)
    for name, data in expected.items():
        assert got[name] == data, f"{name} differs from the local run"
    man = json.loads((job / "dask" / "manifest-segment.json").read_text())
    assert man["n_done"] == N_IMAGES and man["n_failed"] == 0 and man["workers"] == f"dask:{address}"
    pids = {rec["info"]["pid"] for rec in man["done"]}
    assert pids <= worker_pids
    assert len(survivor) == 1 and survivor <= pids, (survivor, pids)  # the survivor took over
