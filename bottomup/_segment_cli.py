"""``bottomup segment``: ucm2 hierarchies for images and folders (a resumable folder job)."""

from __future__ import annotations

import argparse
import sys

_DESCRIPTION = """\
Compute the gPb-owt-ucm hierarchy of each image and write its ucm2 (BSDS layout, one file per
image, named after the image). The quality preset combines the hierarchies of the image and of its
half-size copy (MCG's alignment; --single-scale for the image's own). --format mat is
BSDS-compatible (variable ucm2), so the official MATLAB benchmark reads it. Outputs are written
atomically; images whose output exists are skipped, so an interrupted run resumes. A manifest
(versions, parameters, timings, failures) is written beside the outputs. Failures are listed and
the rest go on; the exit status is 1 if any failed."""


def add_job_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by every folder job."""
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run on a cluster")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_job_from_args(task: str, args, ext: str, params: dict) -> int:
    """Run a folder job and print its summary; exit status 1 when an image failed."""
    from bottomup.jobs import run_job

    try:
        res = run_job(task, args.inputs, args.out, ext=ext, params=params, workers=args.workers,
                      scheduler=args.scheduler, progress=not args.quiet)
    except (FileNotFoundError, PermissionError, ValueError) as exc:
        print(f"bottomup {task}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(res.done)} done, {len(res.skipped)} skipped (already done), {len(res.failed)} failed; "
          f"manifest: {res.manifest}")
    for rec in res.failed:
        print(f"  failed: {rec['input']}: {rec['error']}", file=sys.stderr)
    return 0 if res.ok else 1


def add_contours_argument(p: argparse.ArgumentParser) -> None:
    """``--contours gpb|learned``, shared by the commands that build hierarchies."""
    p.add_argument("--contours", choices=("gpb", "learned"), default="gpb",
                   help="contour detector: gPb (default) or the learned CNN (needs torch)")


def contours_param(args) -> dict:
    """The task parameter of ``--contours`` (none for the default gPb)."""
    return {} if args.contours == "gpb" else {"contours": args.contours}


def run(args) -> int:
    from bottomup.pipeline import default_arcs, default_multiscale

    params = {"preset": args.preset} | contours_param(args)
    if args.contours == "gpb":  # written out, so that the manifest says which one ran
        params["multiscale"] = default_multiscale(args.preset) if args.multiscale is None else args.multiscale
    elif args.multiscale:  # only when asked, so that earlier learned folders still resume
        params["multiscale"] = True
    if args.seed != 0:  # only when set, so that earlier folders (no seed: 0) still resume
        params["seed"] = args.seed
    arcs = args.arcs or default_arcs(args.contours)
    if arcs != "mean":  # written out, so that the manifest says which one ran
        params["arcs"] = arcs
    return run_job_from_args("segment", args, f".{args.format}", params)


def register(subparsers) -> None:
    """Add ``segment`` to the ``bottomup`` command line."""
    p = subparsers.add_parser("segment", help="ucm2 hierarchy per image (gPb-owt-ucm)",
                              description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(p)
    p.add_argument("--format", choices=("mat", "npz", "png"), default="mat",
                   help="ucm2 file format (default mat, BSDS-compatible)")
    p.add_argument("--preset", choices=("quality", "balanced", "fast", "mcg"), default="quality")
    add_contours_argument(p)
    p.add_argument("--seed", type=int, default=0,
                   help="seed of gPb's texton k-means (default 0; ignored for --contours learned)")
    p.add_argument("--arcs", choices=("mean", "learned"),
                   help="arc scores before the merging: mean contour strength (the OWT-UCM; default for "
                        "gPb) or the learned arc scorer (default for --contours learned)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--multiscale", dest="multiscale", action="store_true", default=None,
                       help="combine the hierarchies of the image at x1 and x0.5 (MCG's alignment; "
                            "the default of gPb's --preset quality; opt-in for --contours learned)")
    scale.add_argument("--single-scale", dest="multiscale", action="store_false",
                       help="the image's own hierarchy only (the default of the other presets)")
    p.set_defaults(func=run)
