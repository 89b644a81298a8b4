"""Folder jobs: one output per image, atomic writes, resume, worker processes or a Dask cluster.

A job applies one registered *task* (``segment``, ``proposals``, ``deep``, ...) to every image of
a list of files and folders. Each output is written to a temporary file and renamed, so an output
that exists is complete: a rerun skips it, and an interrupted job resumes where it stopped. A
manifest (versions, parameters, per-image timings, failures with their reasons) is written
beside the outputs. Failures do not stop the job.

Tasks are plain functions ``fn(in_path, out_path, **params) -> dict | None`` registered by name in
:data:`TASKS` as ``"module:function"`` strings, so worker processes and Dask workers import them
themselves. A task must write ``out_path`` atomically, e.g. with :func:`atomic_path`.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bottomup.io.files import atomic_path

__all__ = [
    "TASKS",
    "TASKS_GROUP",
    "IMAGE_EXTENSIONS",
    "JobResult",
    "atomic_path",
    "list_images",
    "run_job",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")

#: Built-in tasks: name -> "module:function" (imported by each worker). Other packages add
#: theirs through the entry-point group :data:`TASKS_GROUP` (``deep`` adds ``deep``).
TASKS: dict[str, str] = {
    "segment": "bottomup.pipeline:segment_file",
    "proposals": "bottomup.mcg.propose:proposals_file",
}
#: Entry-point group of tasks added by other packages (name -> "module:function").
TASKS_GROUP = "bottomup.tasks"


def list_images(inputs) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of image files.

    Parameters
    ----------
    inputs : sequence of path-like
        Image files (any extension) and folders (their entries with a known extension, not
        recursive). An entry that is not a regular file (a FIFO, a folder named ``x.jpg``) is
        kept, so that the job lists it as failed with the reader's reason instead of skipping it.

    Raises
    ------
    FileNotFoundError
        For an input that does not exist.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS))
        elif p.exists():  # a FIFO or device too: the reader refuses it with a clear error
            out.append(p)
        else:
            raise FileNotFoundError(f"input not found: {p}")
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _spec(task: str) -> str:
    if task in TASKS:
        return TASKS[task]
    from importlib.metadata import entry_points

    added = {ep.name: ep.value for ep in entry_points(group=TASKS_GROUP)}
    if task not in added:
        raise ValueError(f"unknown task {task!r}; registered tasks: {sorted(TASKS | added)}")
    return added[task]


def _resolve(spec: str):
    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)


def _run_one(spec: str, in_path: str, out_path: str, params: dict) -> dict:
    """Run one image with the task function ``spec`` ("module:function"); never raises."""
    t0 = time.perf_counter()
    try:
        info = _resolve(spec)(in_path, out_path, **params) or {}
        if not os.path.exists(out_path):
            raise RuntimeError(f"task {spec!r} finished without writing {out_path}")
        return {"input": in_path, "output": out_path, "ok": True,
                "seconds": time.perf_counter() - t0, "info": info}
    except Exception as exc:  # noqa: BLE001 - a job reports every failure and goes on
        return {"input": in_path, "output": out_path, "ok": False,
                "seconds": time.perf_counter() - t0,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=4)}


@dataclass
class JobResult:
    """What a job did.

    Attributes
    ----------
    done : list of dict
        Images processed now (``input, output, seconds, info``).
    skipped : list of str
        Inputs whose output already existed.
    failed : list of dict
        Images that failed, with ``error``.
    manifest : Path
        The manifest written beside the outputs.
    """

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    manifest: Path | None = None

    @property
    def ok(self) -> bool:
        """True when no image failed."""
        return not self.failed


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".write-test-")
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        raise PermissionError(f"output folder {out_dir} is not writable: {exc}") from exc


def _versions() -> dict:
    vers = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("bottomup", "numpy", "scipy", "numba", "skimage", "cv2", "torch"):
        mod = sys.modules.get(name)
        if mod is None and name in ("bottomup", "numpy"):
            mod = importlib.import_module(name)
        if mod is not None:
            vers[name] = getattr(mod, "__version__", "?")
    return vers


def run_job(task: str, inputs, out_dir, *, ext: str, params: dict | None = None,
            workers: int = 1, scheduler: str | None = None, progress: bool = True,
            retries: int = 2) -> JobResult:
    """Apply a registered task to every image, skipping those already done.

    Parameters
    ----------
    task : str
        A key of :data:`TASKS`.
    inputs : sequence of path-like
        Image files and folders.
    out_dir : path-like
        Output folder (created; must be writable; shared by all workers for a cluster).
    ext : str
        Output extension, e.g. ``".mat"``; output of ``a/b/img.jpg`` is ``out_dir/img{ext}``.
    params : dict, optional
        Keyword arguments for the task, recorded in the manifest.
    workers : int
        Local worker processes (ignored with ``scheduler``).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``) or a
        ``distributed.Client``/``LocalCluster`` object: tasks run per image there and are retried
        ``retries`` times when a worker dies.
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    result : JobResult
    """
    params = dict(params or {})
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer, got {workers!r}")
    spec = _spec(task)
    _resolve(spec)  # fail early on an unknown task or a broken import
    out_dir = Path(out_dir)
    _check_writable(out_dir)
    images = list_images(inputs)
    stems: dict[str, Path] = {}
    for p in images:
        if p.stem in stems:
            raise ValueError(f"two inputs map to the same output name {p.stem}{ext}: {stems[p.stem]} and {p}")
        stems[p.stem] = p
    result = JobResult()
    todo = []
    for p in images:
        out = out_dir / f"{p.stem}{ext}"
        if out.exists():
            result.skipped.append(str(p))
        else:
            todo.append((str(p), str(out)))
    t0 = time.perf_counter()
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=task, unit="img")

    def collect(rec):
        (result.done if rec["ok"] else result.failed).append(rec)
        if bar is not None:
            bar.update(1)
            if not rec["ok"]:
                bar.write(f"failed: {rec['input']}: {rec['error']}")

    if scheduler is not None:
        _run_dask(spec, task, todo, params, scheduler, retries, collect)
    elif workers == 1 or len(todo) <= 1:
        for inp, out in todo:
            collect(_run_one(spec, inp, out, params))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            futs = [ex.submit(_run_one, spec, inp, out, params) for inp, out in todo]
            for f in as_completed(futs):
                collect(f.result())
    if bar is not None:
        bar.close()
    manifest = {
        "task": task,
        "params": params,
        "versions": _versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "wall_seconds": time.perf_counter() - t0,
        "workers": workers if scheduler is None else f"dask:{scheduler}",
        "n_inputs": len(images),
        "n_done": len(result.done),
        "n_skipped": len(result.skipped),
        "n_failed": len(result.failed),
        "done": [{k: r[k] for k in ("input", "output", "seconds", "info")} for r in result.done],
        "skipped": result.skipped,
        "failed": [{k: r[k] for k in ("input", "error")} for r in result.failed],
    }
    path = out_dir / f"manifest-{task}.json"
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, default=str)
    result.manifest = path
    return result


def _run_dask(spec, task, todo, params, scheduler, retries, collect):
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover
        raise ImportError("--scheduler needs dask distributed: pip install 'bottomup[dist]'") from exc
    own = isinstance(scheduler, str)
    client = Client(scheduler) if own else scheduler
    if not isinstance(client, Client):
        client = Client(client)  # a LocalCluster or similar
        own = True
    try:
        # Workers run in their own folders (on other machines, on a shared file system): a path
        # relative to this process's folder would not resolve there.
        futs = [client.submit(_run_one, spec, os.path.abspath(inp), os.path.abspath(out), params,
                              pure=False, retries=retries,
                              key=f"{task}-{Path(inp).stem}-{os.getpid()}-{i}")
                for i, (inp, out) in enumerate(todo)]
        for fut in as_completed(futs):
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after the retries
                inp = todo[futs.index(fut)][0]
                rec = {"input": inp, "output": None, "ok": False, "seconds": 0.0,
                       "error": f"{type(exc).__name__}: {exc}"}
            collect(rec)
    finally:
        if own:
            client.close()
