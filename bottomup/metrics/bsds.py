"""Evaluate a folder of predictions against BSDS ground truth (the engine of ``bench/bsds.py``).

A prediction folder holds one file per image id: ``<id>.mat`` or ``<id>.npz`` with a ``ucm2``
(boundary and region metrics), ``<id>.png`` with a 16-bit ucm2 (recognised by its shape
``(2H+1, 2W+1)``, as ``write_ucm2`` and ``bottomup segment --format png`` write it), or
``<id>.png`` / ``<id>.npy`` with an image-size boundary map in
[0, 1] (boundary metrics only; an 8-bit PNG is divided by 255, a 16-bit one by 65535).
Per-image results are cached on disk (keyed by the content of both files, the protocol and the
code version, :func:`result_key`), so a rerun is instant; images run in parallel worker processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bottomup.io.files import atomic_path
from bottomup.metrics.boundary import BoundaryParams, boundary_counts, collect_boundaries
from bottomup.metrics.regions import RegionCounts, collect_regions, region_counts

__all__ = ["find_pairs", "evaluate_image", "evaluate_folder", "plot_pr", "result_key", "CACHE_VERSION"]

#: Part of every cache key; the code version (a hash of the sources) already changes with the code,
#: so bump this only to drop entries for another reason (a change of the cached JSON's layout).
CACHE_VERSION = "2"
_PRED_EXTS = (".mat", ".npz", ".png", ".npy")


def _default_cache_dir() -> Path:
    root = os.environ.get("BOTTOMUP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bottomup"
    )
    return Path(root) / "bsds"


def find_pairs(pred_dir, gt_dir, ids=None) -> list[tuple[str, Path, Path]]:
    """Pair each ground-truth id with its prediction file.

    Parameters
    ----------
    pred_dir, gt_dir : path-like
        Folders of predictions (``<id>.mat|.npz|.png|.npy``) and of BSDS ``<id>.mat`` ground truth.
    ids : sequence of str, optional
        Evaluate only these ids (default: every ground-truth file).

    Returns
    -------
    pairs : list of (id, prediction path, ground-truth path)

    Raises
    ------
    FileNotFoundError
        If a folder is missing, or a ground-truth id has no prediction (named in the message):
        nothing is skipped silently.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not d.is_dir():
            raise FileNotFoundError(f"{what} folder not found: {d}")
    gts = {p.stem: p for p in sorted(gt_dir.glob("*.mat"))}
    if ids is not None:
        ids = [str(i).strip() for i in ids if str(i).strip()]
        unknown = [i for i in ids if i not in gts]
        if unknown:
            raise FileNotFoundError(
                f"no ground truth for id(s) {unknown[:5]} in {gt_dir}"
                + (f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else "")
            )
    else:
        ids = list(gts)
    if not ids:
        raise FileNotFoundError(f"no ground-truth .mat files in {gt_dir}")
    pairs, missing = [], []
    for i in ids:
        found = [pred_dir / f"{i}{ext}" for ext in _PRED_EXTS if (pred_dir / f"{i}{ext}").exists()]
        if not found:
            missing.append(i)
            continue
        pairs.append((i, found[0], gts[i]))
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} ground-truth id(s) have no prediction in {pred_dir}: "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''} (expected <id>.mat/.npz/.png/.npy)"
        )
    return pairs


def _read_prediction(path: Path, shape=None):
    """Return ("ucm2", array) or ("pb", array) for one prediction file.

    A PNG is a ucm2 when its shape is ``(2H+1, 2W+1)`` for the image shape ``shape = (H, W)``
    (what ``bottomup segment --format png`` and ``write_ucm2`` write), else a boundary map."""
    from bottomup.io import read_ucm2

    ext = path.suffix.lower()
    if ext in (".mat", ".npz"):
        return "ucm2", read_ucm2(path)
    if ext == ".png":
        import cv2

        from bottomup.io._guard import resolve_max_pixels
        from bottomup.io.images import _decode

        arr = _decode(str(path), what="PNG boundary map", max_pixels=resolve_max_pixels(),
                      flags=cv2.IMREAD_UNCHANGED)
        if arr.ndim == 3:
            raise ValueError(f"boundary map {path} must be single-channel, got shape {arr.shape}")
        scale = 65535.0 if arr.dtype == np.uint16 else 255.0
        if shape is not None and arr.shape == (2 * shape[0] + 1, 2 * shape[1] + 1):
            from bottomup.validate import check_ucm2

            return "ucm2", check_ucm2(arr.astype(np.float64) / scale, name=f"ucm2 PNG {path}")
        return "pb", arr.astype(np.float64) / scale
    if ext == ".npy":
        from bottomup.io._guard import open_regular

        with open_regular(str(path), ".npy boundary map") as f:
            try:  # from a real file numpy reads at most the file's bytes, whatever the header claims
                arr = np.load(f, allow_pickle=False)
            except Exception as exc:  # noqa: BLE001 - numpy raises many types on a damaged file
                raise ValueError(
                    f"cannot read .npy boundary map {path}: {type(exc).__name__}: {exc}") from None
        if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"boundary map {path} must be a numeric array")
        arr = np.asarray(arr, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"boundary map {path} must be 2-D, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"boundary map {path} contains NaN or inf")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"boundary map {path} must lie in [0, 1], got [{arr.min()}, {arr.max()}]")
        return "pb", arr
    raise ValueError(f"unknown prediction type {ext!r}: {path}")


def evaluate_image(pred_path, gt_path, params: BoundaryParams | None = None, *, regions=True) -> dict:
    """Boundary (and, for a ucm2, region) statistics of one image.

    Parameters
    ----------
    pred_path, gt_path : path-like
        A prediction file and its BSDS ground-truth ``.mat``.
    params : BoundaryParams, optional
    regions : bool
        Also compute the region statistics when the prediction is a ucm2.

    Returns
    -------
    result : dict
        ``boundary``: (T, 4) counts as nested lists; ``region``: ``RegionCounts.to_dict()`` or None;
        ``kind``: "ucm2" or "pb"; ``seconds``.

    Raises
    ------
    ValueError
        Naming the file, if it cannot be read, holds NaN, or its shape disagrees with the
        ground truth.
    """
    from bottomup.io import read_bsds_gt

    params = params or BoundaryParams()
    pred_path, gt_path = Path(pred_path), Path(gt_path)
    t0 = time.perf_counter()
    gt = read_bsds_gt(gt_path)
    try:
        kind, arr = _read_prediction(pred_path, gt.shape)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        raise ValueError(msg if str(pred_path) in msg else f"{pred_path}: {msg}") from exc
    pb = arr[2::2, 2::2] if kind == "ucm2" else arr
    if pb.shape != gt.shape:
        raise ValueError(
            f"{pred_path}: prediction has image shape {pb.shape} "
            f"({'ucm2 ' + str(arr.shape) if kind == 'ucm2' else 'boundary map'}), "
            f"but the ground truth {gt_path.name} has shape {gt.shape}"
        )
    counts = boundary_counts(pb, gt.boundaries, params)
    reg = None
    if regions and kind == "ucm2":
        reg = region_counts(arr, gt.segmentations, params.thresholds).to_dict()
    return {
        "kind": kind,
        "boundary": counts.tolist(),
        "region": reg,
        "seconds": time.perf_counter() - t0,
    }


def result_key(pred_path, gt_path, params: BoundaryParams | None = None, *, regions=True) -> str:
    """Cache key of :func:`evaluate_image`'s result (:func:`bottomup.io.cache_key`).

    It covers the protocol, ``regions``, the content of both files and the code version of the
    ``bottomup`` package (the matcher, the region metrics, the readers and their checks).

    Parameters
    ----------
    pred_path, gt_path : path-like
        The prediction file and its ground truth, as for :func:`evaluate_image`.
    params : BoundaryParams, optional
    regions : bool

    Returns
    -------
    key : str
        24 hex digits.
    """
    from bottomup.io import cache_key

    params = params or BoundaryParams()
    return cache_key("bsds-eval", params={"protocol": asdict(params), "regions": bool(regions),
                                         "version": CACHE_VERSION},
                     files=[pred_path, gt_path], code=["bottomup"])


def _cached_eval(args):
    """``(id, result)``; a file that cannot be evaluated gives ``{"error": ...}`` instead of raising."""
    iid, pred, gt = args[:3]
    try:
        return _cached_eval_or_raise(args)
    except Exception as exc:  # noqa: BLE001 - every bad file is reported, the others go on
        msg = str(exc)
        if pred not in msg and gt not in msg:
            msg = f"{pred}: {msg}"
        return iid, {"error": f"{type(exc).__name__}: {msg}"}


def _cached_eval_or_raise(args):
    iid, pred, gt, params_dict, cache_dir, regions = args
    params = BoundaryParams(**params_dict)
    key = None
    if cache_dir is not None:
        key = Path(cache_dir) / f"{iid}-{result_key(pred, gt, params, regions=regions)}.json"
        if key.exists():
            try:
                with open(key) as f:
                    res = json.load(f)
                res["cached"] = True
                return iid, res
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed
    res = evaluate_image(pred, gt, params, regions=regions)
    if key is not None:
        with atomic_path(key) as tmp, open(tmp, "w") as f:
            json.dump(res, f)
    res["cached"] = False
    return iid, res


def _warmup():
    """Compile (or load from cache) the numba kernels once in a worker."""
    z = np.zeros((8, 8))
    boundary_counts(z, [np.zeros((8, 8), bool)], BoundaryParams(n_thresholds=2))
    u = np.zeros((17, 17))
    region_counts(u, [np.zeros((8, 8), int)], np.array([0.5]))


def evaluate_folder(pred_dir, gt_dir, *, ids=None, params=None, workers=1, cache_dir="default",
                    regions=True, progress=True, skip_failed=False) -> dict:
    """Evaluate a folder of predictions with the BSDS protocol.

    Parameters
    ----------
    pred_dir, gt_dir : path-like
        See :func:`find_pairs`.
    ids : sequence of str, optional
        Subset of image ids.
    params : BoundaryParams, optional
        The protocol (official by default).
    workers : int
        Worker processes (1 = in this process).
    cache_dir : path-like, "default" or None
        Per-image result cache; "default" is ``$BOTTOMUP_CACHE/bsds`` or ``~/.cache/bottomup/bsds``;
        None disables it.
    regions : bool
        Compute region metrics for ucm2 predictions.
    progress : bool
        Show a progress bar (tqdm) on stderr.
    skip_failed : bool
        When some files cannot be read (corrupt, wrong shape ...): score the others and list the
        failures in ``figures["failed"]``. By default every image is still evaluated (and cached),
        then one ``ValueError`` lists every failed file, so a figure never silently covers fewer
        images.

    Returns
    -------
    figures : dict
        ``ods, ois, ap, r50, covering_ods, covering_ois, covering_best, pri_ods, pri_ois, vi_ods,
        vi_ois, n_images`` (region keys None when any prediction is not a ucm2), the curves, the
        per-image F at the ODS threshold, timings, the protocol and ``failed`` (a list of
        ``{"id", "pred", "gt", "error"}``, empty unless ``skip_failed``).

    Raises
    ------
    FileNotFoundError
        See :func:`find_pairs`.
    ValueError
        Listing every file that could not be evaluated, with its reason (unless ``skip_failed``).
    """
    params = params or BoundaryParams()
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer, got {workers!r}")
    pairs = find_pairs(pred_dir, gt_dir, ids)
    if cache_dir == "default":
        cache_dir = _default_cache_dir()
    jobs = [(i, str(p), str(g), asdict(params), None if cache_dir is None else str(cache_dir),
             regions) for i, p, g in pairs]
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="bsds", unit="img", leave=False)
    ex = None
    if workers > 1:
        import multiprocessing as mp

        _warmup()  # compile once here so that the workers load the kernels from numba's cache
        ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=_warmup)
    with ex or contextlib.nullcontext():
        for iid, res in ex.map(_cached_eval, jobs, chunksize=1) if ex else map(_cached_eval, jobs):
            results[iid] = res
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0
    failed = [{"id": i, "pred": str(p), "gt": str(g), "error": results[i]["error"]}
              for i, p, g in pairs if "error" in results[i]]
    if failed and (not skip_failed or len(failed) == len(pairs)):
        lines = "\n".join(f"  {r['id']}: {r['error']}" for r in failed)
        raise ValueError(
            f"{len(failed)} of {len(pairs)} image(s) could not be evaluated"
            + ("" if len(failed) == len(pairs) else
               " (the others were, and are cached; skip_failed=True / --skip-failed scores them)")
            + f":\n{lines}"
        )
    order = [i for i, _, _ in pairs if "error" not in results[i]]
    counts = np.array([results[i]["boundary"] for i in order], dtype=np.float64)
    figures = collect_boundaries(counts, params.thresholds)
    if {results[i]["kind"] for i in order} == {"ucm2"} and regions:
        figures.update(collect_regions([RegionCounts.from_dict(results[i]["region"]) for i in order]))
    else:
        figures.update(dict.fromkeys(("covering_ods", "covering_ois", "covering_best", "pri_ods",
                                      "pri_ois", "vi_ods", "vi_ois")))
    return figures | {
        "ids": order, "per_image_seconds": [results[i]["seconds"] for i in order],
        "n_cached": int(sum(results[i]["cached"] for i in order)), "wall_seconds": wall,
        "workers": int(workers), "protocol": asdict(params), "failed": failed,
    }


def plot_pr(figures: dict, path, *, label: str = "prediction", others: dict | None = None) -> None:
    """Draw the precision-recall curve with iso-F lines, as the BSDS figures, to ``path``.

    Parameters
    ----------
    figures : dict
        Output of :func:`evaluate_folder` (or any dict with ``curve`` and ``ods``).
    path : path-like
        Image file to write (PNG, PDF, SVG ...).
    label : str
        Legend entry.
    others : dict of {str: dict}, optional
        More curves to draw beside it (e.g. a reference), by label.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover
        raise ImportError("plotting needs matplotlib: pip install 'bottomup[plot]'") from exc
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    r = np.linspace(0.01, 1, 200)
    for f in np.arange(0.1, 1.0, 0.1):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = f * r / (2 * r - f)
        ok = (p >= 0) & (p <= 1) & (r >= f / 2)
        ax.plot(r[ok], p[ok], color="0.85", lw=0.8, zorder=0)
        ax.text(0.99, f * 0.99 / (2 * 0.99 - f) if f < 0.99 else 1, f"{f:.1f}", fontsize=6,
                color="0.6")
    curves = {label: figures}
    curves.update(others or {})
    for name, fig_d in curves.items():
        c = fig_d["curve"]
        rr, pp = np.asarray(c["R"]), np.asarray(c["P"])
        keep = (rr > 0) | (pp > 0)
        ax.plot(rr[keep], pp[keep], lw=2, label=f"[F={fig_d['ods']:.3f}] {name}")
        if "ods_recall" in fig_d:
            ax.plot([fig_d["ods_recall"]], [fig_d["ods_precision"]], "o", ms=5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_aspect("equal")
    ax.grid(True, lw=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
