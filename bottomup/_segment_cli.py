"""``bottomup segment``: ucm2 hierarchies for images and folders (a resumable folder job)."""

from __future__ import annotations

import argparse
import sys

from bottomup.cli import add_contours_argument, add_job_arguments, run_job_from_args

_DESCRIPTION = """\
Compute the OWT-UCM hierarchy of each image (gPb contours by default, --contours learned for the
CNN) and write its ucm2 (BSDS layout, one file per image, named after the image). gPb's quality
preset combines the hierarchies of the image and of its half-size copy (MCG's alignment;
--single-scale for the image's own). --format mat is
BSDS-compatible (variable ucm2), so the official MATLAB benchmark reads it. Outputs are written
atomically; images whose output exists are skipped, so an interrupted run resumes. A manifest
(versions, parameters, timings, failures) is written beside the outputs. Failures are listed and
the rest go on; the exit status is 1 if any failed."""


def source_options(args) -> dict:
    """The contour-source options given on the command line (``--preset``, ``--seed``,
    ``--multiscale``), checked against the source: ``--preset`` and ``--seed`` are gPb's."""
    opts = {}
    if args.preset == "mcg":  # the old name, one release
        print("bottomup: --preset mcg is called --preset medium now", file=sys.stderr)
        args.preset = "medium"
    if args.preset is not None:
        opts["preset"] = args.preset
    if args.seed is not None:
        opts["seed"] = args.seed
    if opts and args.contours != "gpb":
        raise ValueError(f"--preset and --seed are options of --contours gpb, not {args.contours}")
    if getattr(args, "multiscale", None) is not None:
        opts["multiscale"] = args.multiscale
    return opts


def run(args) -> int:
    from bottomup.contours import get_source

    try:
        opts = source_options(args)
        source = get_source(args.contours).configured(**opts)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"bottomup segment: error: {exc}", file=sys.stderr)
        return 2
    # written out in full, so that the manifest says what ran
    params = {"contours": args.contours, "arcs": args.arcs or source.arcs,
              "multiscale": source.multiscale is not None} | opts
    if args.contours == "gpb":
        params |= {"preset": source.preset, "seed": source.seed}
    return run_job_from_args("segment", args, f".{args.format}", params)


def register(subparsers) -> None:
    """Add ``segment`` to the ``bottomup`` command line."""
    p = subparsers.add_parser("segment", help="ucm2 hierarchy per image (gPb-owt-ucm)",
                              description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(p)
    p.add_argument("--format", choices=("mat", "npz", "png"), default="mat",
                   help="ucm2 file format (default mat, BSDS-compatible)")
    add_contours_argument(p)
    p.add_argument("--preset", choices=("quality", "balanced", "fast", "medium", "mcg"),
                   help="gPb preset (default quality; --contours gpb only; mcg: old name of medium)")
    p.add_argument("--seed", type=int, help="seed of gPb's texton k-means (default 0; --contours gpb only)")
    p.add_argument("--arcs", choices=("mean", "learned"),
                   help="arc scores before the merging: mean contour strength (the OWT-UCM; default for "
                        "gPb) or the learned arc scorer (default for --contours learned)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--multiscale", dest="multiscale", action="store_true", default=None,
                       help="combine the hierarchies of the image at x1 and x0.5 (MCG's alignment; "
                            "the default of gPb's quality preset; opt-in for other sources)")
    scale.add_argument("--single-scale", dest="multiscale", action="store_false",
                       help="the image's own hierarchy only (the default of the other presets and sources)")
    p.set_defaults(func=run)
