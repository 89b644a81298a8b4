"""Folder jobs: one output per image, atomic writes, resume, worker processes or a Dask cluster.

A job applies one registered *task* (``segment``, ``proposals``, ``deep``, ...) to every image of
a list of files and folders. Each output is written to a temporary file and renamed, so an output
that exists is complete, and an interrupted job resumes where it stopped. A manifest (versions,
parameters, per-image timings, failures with their reasons) is written beside the outputs.
Failures do not stop the job.

Provenance: beside each output ``NAME`` the job keeps a record ``.NAME.params.json`` (the task,
its parameters, the SHA-256 of the model files they use (:func:`model_files`), the versions and
what the task returned, e.g. the image size). The record is written *before* the task runs and
completed after it, and a record that exists for another configuration is removed together with
its outputs before anything is written, so an output never sits beside a record of other
parameters. A rerun skips an output only when its record matches the parameters and model files
of the new run; otherwise (another configuration, or an output without a record: unknown
provenance) it stops before doing any work with a :class:`ProvenanceError` that names the
differences and the ``overwrite`` option (``--overwrite``).

Tasks are plain functions ``fn(in_path, out_path, **params) -> dict | None`` registered by name in
:data:`TASKS` as ``"module:function"`` strings, so worker processes and Dask workers import them
themselves. A task must write ``out_path`` atomically, e.g. with :func:`atomic_path`, and last
when it writes other files too (list them under ``"outputs"`` in the returned dict, so that
``overwrite`` removes them). A task declares the model files its parameters depend on with an
attribute ``model_files(**params) -> list of paths`` (see :func:`model_files`).
"""

from __future__ import annotations

import contextlib
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

from bottomup.io.cache import file_digest
from bottomup.io.files import atomic_path

__all__ = [
    "TASKS",
    "TASKS_GROUP",
    "IMAGE_EXTENSIONS",
    "JobResult",
    "ProvenanceError",
    "atomic_path",
    "coco_image_id",
    "list_images",
    "map_unordered",
    "model_files",
    "record_path",
    "run_job",
    "stderr_counter",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")

#: Built-in tasks: name -> "module:function" (imported by each worker). Other packages add
#: theirs through the entry-point group :data:`TASKS_GROUP` (``deep`` adds ``deep``).
TASKS: dict[str, str] = {
    "segment": "bottomup._segment_cli:segment_task",
    "proposals": "bottomup.mcg._cli:proposals_task",
}
#: Entry-point group of tasks added by other packages (name -> "module:function").
TASKS_GROUP = "bottomup.tasks"


def map_unordered(fn, items, workers: int = 1, *, progress=None, every: int = 1):
    """Apply ``fn`` to every item, in ``workers`` spawned processes when more than one; yield
    the results as they finish (in completion order).

    The loop of the training and benchmark scripts that fill a per-image cache: ``fn`` must be a
    module-level function (the workers import it) and each item picklable. ``progress``, when
    given, is called as ``progress(done, total)`` after every ``every``-th result and after the
    last one.

    Parameters
    ----------
    fn : callable
        ``fn(item) -> result``.
    items : iterable
    workers : int
        Processes (``spawn``); 1 runs in this process.
    progress : callable or None
    every : int

    Examples
    --------
    >>> list(map_unordered(abs, [-1, 2, -3]))
    [1, 2, 3]
    >>> seen = []
    >>> _ = list(map_unordered(abs, range(5), progress=lambda i, n: seen.append((i, n)), every=2))
    >>> seen
    [(2, 5), (4, 5), (5, 5)]
    """
    items = list(items)
    if workers < 1:
        raise ValueError(f"`workers` must be at least 1, got {workers}")
    if every < 1:
        raise ValueError(f"`every` must be at least 1, got {every}")
    pool = None
    if workers > 1 and len(items) > 1:
        from multiprocessing import get_context

        pool = get_context("spawn").Pool(workers)
    try:
        results = pool.imap_unordered(fn, items) if pool is not None else map(fn, items)
        for i, res in enumerate(results, 1):
            if progress is not None and (i % every == 0 or i == len(items)):
                progress(i, len(items))
            yield res
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def stderr_counter(label: str):
    """A ``progress(done, total)`` for :func:`map_unordered` that rewrites one line on stderr,
    ``label done/total``, and ends it after the last item."""

    def progress(done: int, total: int) -> None:
        print(f"\r{label} {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return progress


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
    unique: dict[Path, Path] = {}
    for p in out:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


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


class ProvenanceError(ValueError):
    """Outputs already in the folder were made with other parameters or model files, or have no
    record (unknown provenance); the message names the differences and the ``overwrite`` option."""


def record_path(out_path) -> Path:
    """The provenance record of an output ``NAME``: ``.NAME.params.json`` in the same folder."""
    out_path = Path(out_path)
    return out_path.with_name(f".{out_path.name}.params.json")


def model_files(task: str, params: dict | None = None) -> list[Path]:
    """The model files (shipped weights, rankers, arc scorers) a task's parameters depend on.

    A task function lists them through its attribute ``model_files(**params)``; a task without
    it depends on none. Their SHA-256 go into every output's record.

    Examples
    --------
    >>> [p.name for p in model_files("proposals", {"n": 10, "method": "scg"})]
    ['scg_ranker_steepest.npz']
    """
    fn = _resolve(_spec(task))
    deps = getattr(fn, "model_files", None)
    return [] if deps is None else [Path(p) for p in deps(**dict(params or {}))]


def _model_hashes(task: str, params: dict) -> dict:
    out = {}
    for p in model_files(task, params):
        if not p.is_file():
            raise FileNotFoundError(f"model file of task {task!r} not found: {p}")
        out[p.name if p.name not in out else str(p)] = file_digest(p, "sha256")
    return out


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def _read_record(out_path) -> dict | None:
    try:
        rec = json.loads(record_path(out_path).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _write_record(out_path, rec: dict) -> None:
    with atomic_path(record_path(out_path)) as tmp, open(tmp, "w") as f:
        json.dump(rec, f, indent=1, default=str)


def _remove_outputs(out_path: str) -> None:
    """Remove an output, its record and the other files its record lists (``overwrite``)."""
    old = _read_record(out_path) or {}
    folder = Path(out_path).parent
    extras = (old.get("info") or {}).get("outputs") or []
    for p in [record_path(out_path), *(folder / Path(str(n)).name for n in extras), Path(out_path)]:
        p.unlink(missing_ok=True)


def coco_image_id(path) -> int | str:
    """COCO ``image_id`` of an input file: its stem as an int when it is all digits (the COCO and
    BSDS file names: ``000000397133.jpg`` -> 397133, ``100007.jpg`` -> 100007), else the stem.

    Examples
    --------
    >>> coco_image_id("val/000000397133.jpg"), coco_image_id("cat.png")
    (397133, 'cat')
    """
    stem = Path(path).stem
    return int(stem) if stem.isascii() and stem.isdigit() else stem


def _run_one(spec: str, in_path: str, out_path: str, params: dict, record: dict | None = None,
             overwrite: bool = False) -> dict:
    """Run one image with the task function ``spec`` ("module:function"); never raises.

    With ``record`` (the job's task, parameters and model hashes), the output's provenance record
    is written before the task runs (after removing an old output and its files when
    ``overwrite``) and completed with the task's info after it; removed again if the task fails.
    """
    t0 = time.perf_counter()
    try:
        if record is not None:
            if overwrite and os.path.lexists(out_path):
                _remove_outputs(out_path)
            record = {**record, "input": in_path, "output": Path(out_path).name}
            _write_record(out_path, {**record, "complete": False})
        info = _resolve(spec)(in_path, out_path, **params) or {}
        if not os.path.exists(out_path):
            raise RuntimeError(f"task {spec!r} finished without writing {out_path}")
        seconds = time.perf_counter() - t0
        if record is not None:
            _write_record(out_path, {**record, "complete": True, "seconds": seconds,
                                     "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "info": info})
        return {"input": in_path, "output": out_path, "ok": True, "seconds": seconds, "info": info}
    except Exception as exc:  # noqa: BLE001 - a job reports every failure and goes on
        if record is not None and not os.path.exists(out_path):
            with contextlib.suppress(OSError):
                record_path(out_path).unlink()
        return {"input": in_path, "output": out_path, "ok": False,
                "seconds": time.perf_counter() - t0,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=4)}


def _differences(rec: dict, identity: dict) -> dict:
    """``{what: (recorded, now)}`` between a record and the job's task, parameters and models."""
    diff = {}
    if rec.get("task") != identity["task"]:
        diff["task"] = (rec.get("task"), identity["task"])
    old, new = rec.get("params") or {}, identity["params"]
    for k in sorted(set(old) | set(new)):
        if old.get(k, "(not set)") != new.get(k, "(not set)"):
            diff[k] = (old.get(k, "(not set)"), new.get(k, "(not set)"))
    old, new = rec.get("models") or {}, identity["models"]
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            short = [h[:12] if isinstance(h, str) else "(none)" for h in (old.get(k), new.get(k))]
            diff[f"model file {k} (sha256)"] = tuple(short)
    return diff


def _names(names: list) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _conflict_message(out_dir: Path, conflicts: list, identity: dict, n_inputs: int) -> str:
    groups: dict = {}
    unknown = []
    for out, rec in conflicts:
        if rec is None:
            unknown.append(out.name)
            continue
        for what, (was, now) in _differences(rec, identity).items():
            groups.setdefault((what, json.dumps(was), json.dumps(now)), []).append(out.name)
    lines = [f"{len(conflicts)} of the {n_inputs} outputs already in {out_dir} were not made with these "
             f"parameters, so nothing was done:"]
    for (what, was, now), names in groups.items():
        lines.append(f"  {what}: {was} in the existing output(s), {now} now ({_names(names)})")
    if unknown:
        lines.append(f"  {len(unknown)} output(s) have no parameter record (written before bottomup kept "
                     f"records, by an older version or by hand): unknown provenance ({_names(unknown)})")
    lines.append("Rerun with --overwrite (Python: run_job(..., overwrite=True)) to recompute them, or "
                 "write to another output folder.")
    return "\n".join(lines)


@dataclass
class JobResult:
    """What a job did.

    Attributes
    ----------
    done : list of dict
        Images processed now (``input, output, seconds, info``).
    skipped : list of str
        Inputs whose output already existed with a record of the same parameters and models.
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
            retries: int = 2, overwrite: bool = False) -> JobResult:
    """Apply a registered task to every image, skipping those already done with the same parameters.

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
    overwrite : bool
        Recompute the outputs that exist with another record (other parameters or model files)
        or none; by default such outputs stop the job before it starts.

    Returns
    -------
    result : JobResult

    Raises
    ------
    FileNotFoundError
        An input that does not exist, or no image at all in the inputs.
    ProvenanceError
        Outputs of other parameters (or unknown provenance) in ``out_dir`` and not ``overwrite``.
    """
    params = dict(params or {})
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer, got {workers!r}")
    spec = _spec(task)
    _resolve(spec)  # fail early on an unknown task or a broken import
    out_dir = Path(out_dir)
    _check_writable(out_dir)
    images = list_images(inputs)
    if not images:
        raise FileNotFoundError(
            f"no images found in {[str(i) for i in inputs]}: folders are searched (not recursively) "
            f"for files ending in {', '.join(IMAGE_EXTENSIONS)}")
    stems: dict[str, Path] = {}
    for p in images:
        if p.stem in stems:
            raise ValueError(f"two inputs map to the same output name {p.stem}{ext}: {stems[p.stem]} and {p}")
        stems[p.stem] = p
    identity = {"task": task, "params": _jsonable(params), "models": _model_hashes(task, params)}
    result = JobResult()
    todo, conflicts = [], []
    for p in images:
        out = out_dir / f"{p.stem}{ext}"
        if not os.path.lexists(out):
            todo.append((str(p), str(out)))
            continue
        rec = _read_record(out)
        if rec is not None and not _differences(rec, identity):
            result.skipped.append(str(p))
        elif overwrite:
            todo.append((str(p), str(out)))
        else:
            conflicts.append((out, rec))
    if conflicts:
        raise ProvenanceError(_conflict_message(out_dir, conflicts, identity, len(images)))
    record = {**identity, "versions": _versions()}
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
        _run_dask(spec, task, todo, params, scheduler, retries, collect, record, overwrite)
    elif workers == 1 or len(todo) <= 1:
        for inp, out in todo:
            collect(_run_one(spec, inp, out, params, record, overwrite))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            futs = [ex.submit(_run_one, spec, inp, out, params, record, overwrite) for inp, out in todo]
            for f in as_completed(futs):
                collect(f.result())
    if bar is not None:
        bar.close()
    manifest = {
        "task": task,
        "params": params,
        "models": identity["models"],
        "versions": record["versions"],
        "overwrite": overwrite,
        "records": "each output NAME has its own record .NAME.params.json beside it (parameters, model "
                   "hashes, image metadata); skipped outputs keep theirs",
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


def _run_dask(spec, task, todo, params, scheduler, retries, collect, record=None, overwrite=False):
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
        futs = [client.submit(_run_one, spec, os.path.abspath(inp), os.path.abspath(out), params, record,
                              overwrite, pure=False, retries=retries,
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
