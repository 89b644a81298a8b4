"""``bottomup evaluate``: the BSDS benchmark over a folder (same as ``python bench/bsds.py``)."""

from __future__ import annotations

import argparse
import json
import os
import sys

_DESCRIPTION = """\
Score a folder of predictions with the BSDS500 protocol: boundary ODS/OIS/AP/R50 (exact
one-to-one pixel matching, 99 thresholds, maximum distance 0.0075 x diagonal) and, for ucm2
predictions, region Covering/PRI/VI. PRED holds one file per image id: <id>.mat, <id>.npz or
<id>.png with a ucm2 (every format `bottomup segment` writes; a PNG is a ucm2 when its shape is
(2H+1, 2W+1) for the ground truth's (H, W)), or <id>.png / <id>.npy with an image-size boundary
map in [0, 1]. GT holds BSDS
groundTruth <id>.mat files. Per-image results are cached (see --cache), so reruns are instant."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to a parser."""
    p.add_argument("--pred", required=True, help="folder of predictions, one file per image id")
    p.add_argument("--gt", required=True, help="folder of BSDS groundTruth <id>.mat files")
    p.add_argument("--json", dest="json_out", help="write the figures and curves to this JSON file")
    p.add_argument("--plot", help="write the precision-recall curve (with iso-F lines) here")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--ids", help="text file with the image ids to evaluate, one per line")
    p.add_argument("--cache", default="default",
                   help="per-image cache folder (default $BOTTOMUP_CACHE/bsds or ~/.cache/bottomup/bsds)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--no-regions", action="store_true", help="boundary metrics only")
    p.add_argument("--thresholds", type=int, default=99, help="number of thresholds (default 99)")
    p.add_argument("--max-dist", type=float, default=0.0075,
                   help="maximum match distance as a fraction of the diagonal (default 0.0075)")
    p.add_argument("--no-thin", action="store_true", help="do not thin thresholded maps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--skip-failed", action="store_true",
                   help="score the images that can be read and list the others (exit status 1); "
                        "by default any unreadable file is an error, after all were tried")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; print a summary table."""
    from bottomup.metrics.boundary import BoundaryParams
    from bottomup.metrics.bsds import evaluate_folder, plot_pr

    ids = None
    if args.ids:
        with open(args.ids) as f:
            ids = [line.strip() for line in f if line.strip()]
    params = BoundaryParams(n_thresholds=args.thresholds, max_dist=args.max_dist,
                            thin=not args.no_thin)
    try:
        figures = evaluate_folder(
            args.pred, args.gt, ids=ids, params=params, workers=args.workers,
            cache_dir=None if args.no_cache else args.cache, regions=not args.no_regions,
            progress=not args.quiet, skip_failed=args.skip_failed,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"bottomup evaluate: error: {exc}", file=sys.stderr)
        return 1
    keys = ("ods", "ois", "ap", "r50", "covering_ods", "covering_ois", "covering_best",
            "pri_ods", "pri_ois", "vi_ods", "vi_ois")
    print(f"{figures['n_images']} images, {figures['wall_seconds']:.1f} s "
          f"({figures['n_cached']} from cache, {figures['workers']} workers)")
    for k in keys:
        v = figures.get(k)
        print(f"  {k:14s} {'-' if v is None else f'{v:.4f}'}")
    if args.json_out:
        from bottomup.io.files import atomic_path

        with atomic_path(args.json_out) as tmp, open(tmp, "w") as f:
            json.dump(figures, f, indent=1)
    if args.plot:
        plot_pr(figures, args.plot, label=os.path.basename(os.path.normpath(args.pred)))
    for rec in figures["failed"]:
        print(f"  failed (not scored): {rec['pred']}: {rec['error']}", file=sys.stderr)
    return 1 if figures["failed"] else 0


def register(subparsers) -> None:
    """Add ``evaluate`` to the ``bottomup`` command line."""
    from bottomup.cli import add_command

    add_arguments(add_command(subparsers, "evaluate", run,
                              "BSDS boundary and region benchmark over a folder", _DESCRIPTION))


def main(argv=None) -> int:
    """Entry point of ``python bench/bsds.py``."""
    p = argparse.ArgumentParser(prog="bench/bsds.py", description=_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))
