"""Folder-job throughput: images per second of ``bottomup segment`` for 1, 2 and 4 local workers.

    python bench/throughput.py --json out/throughput.json
    python bench/throughput.py --root DIR --n 16 --workers 1 2 4 --preset fast --repeat 3

Each measurement is one whole folder job (:func:`bottomup.jobs.run_job`, the engine behind the CLI)
over the same ``--n`` images into a fresh output folder, so it counts what a user waits for:
starting the worker processes, their imports and numba cache loads, reading, segmenting and
writing. One untimed job first compiles numba's kernels into the cache (the timed jobs load them);
then, for each worker count, ``--warmup`` untimed jobs and ``--repeat`` timed ones, reported as
the median (and min, max) of images per second. One worker runs in this process (as the CLI's
``--workers 1`` does); more start a pool of spawned processes per job, each loading the package
and numba's cached kernels before its first image. The load average of the machine is recorded
around each worker count: on a shared machine, read the figures with it.

Images: the first ``--n`` BSDS500 val images (sorted names) of ``--root`` (default
``$BOTTOMUP_DATA/bsds500/data/images/val``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bottomup.jobs import list_images, run_job


def _job(images, workers: int, params: dict, ext: str) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bottomup-throughput-") as out:
        t0 = time.perf_counter()
        res = run_job("segment", images, out, ext=ext, params=params, workers=workers, progress=False)
        wall = time.perf_counter() - t0
    if not res.ok or len(res.done) != len(images):
        raise RuntimeError(f"the job failed on {len(res.failed)} images: {res.failed[:3]}")
    return wall, [r["seconds"] for r in res.done]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = os.environ.get("BOTTOMUP_DATA")
    p.add_argument("--root", default=os.path.join(data, "bsds500", "data", "images", "val") if data else None,
                   help="folder of images (default $BOTTOMUP_DATA/bsds500/data/images/val)")
    p.add_argument("--n", type=int, default=16, help="images per job (default 16)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    p.add_argument("--preset", default="fast", choices=("fast", "balanced", "quality", "medium"))
    p.add_argument("--warmup", type=int, default=1, help="untimed jobs per worker count (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="timed jobs per worker count (default 3)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.root is None:
        p.error("--root is required when BOTTOMUP_DATA is not set")
    if args.n < 1 or args.repeat < 1 or args.warmup < 0 or min(args.workers) < 1:
        p.error("--n, --repeat and --workers must be positive, --warmup non-negative")
    images = list_images([args.root])[: args.n]
    if len(images) < args.n:
        p.error(f"--root {args.root} holds {len(images)} images, fewer than --n {args.n}")
    params, ext = {"preset": args.preset}, ".npz"

    print(f"{len(images)} images of {args.root}, preset {args.preset}; compiling/loading numba's cache ...",
          file=sys.stderr)
    _job(images[:1], 1, params, ext)
    rows = []
    for w in args.workers:
        load_before = os.getloadavg()
        for _ in range(args.warmup):
            _job(images, w, params, ext)
        walls, per_image = [], []
        for _ in range(args.repeat):
            wall, secs = _job(images, w, params, ext)
            walls.append(wall)
            per_image.extend(secs)
        load_after = os.getloadavg()
        ips = [len(images) / t for t in walls]
        row = {"workers": w, "images": len(images), "images_per_s": statistics.median(ips),
               "images_per_s_min": min(ips), "images_per_s_max": max(ips),
               "wall_s": walls, "median_s_per_image_in_worker": statistics.median(per_image),
               "loadavg_1min_before": load_before[0], "loadavg_1min_after": load_after[0]}
        rows.append(row)
        print(f"workers {w}: {row['images_per_s']:.2f} images/s (min {row['images_per_s_min']:.2f}, "
              f"max {row['images_per_s_max']:.2f}); {row['median_s_per_image_in_worker']:.2f} s per image "
              f"inside a worker; load average {load_before[0]:.1f} -> {load_after[0]:.1f}", file=sys.stderr)
    result = {
        "metadata": {"root": str(args.root), "n": len(images), "preset": args.preset,
                     "warmup": args.warmup, "repeat": args.repeat, "cpu_count": os.cpu_count(),
                     "python": sys.version.split()[0], "platform": platform.platform(),
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
        "results": rows,
    }
    print("| workers | images/s (median) | min | max | s per image in a worker | load avg (1 min) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['images_per_s']:.2f} | {r['images_per_s_min']:.2f} | "
              f"{r['images_per_s_max']:.2f} | {r['median_s_per_image_in_worker']:.2f} | "
              f"{r['loadavg_1min_before']:.1f} -> {r['loadavg_1min_after']:.1f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
