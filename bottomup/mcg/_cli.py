"""``bottomup proposals``: ranked SCG/MCG object proposals per image (a resumable folder job)."""

from __future__ import annotations

import argparse

_DESCRIPTION = """\
Compute ranked object proposals of each image (combinatorial grouping of 1 to 4 adjacent regions
of the OWT-UCM hierarchy (SCG) or of the multiscale one (MCG), ranked by a random forest,
near-duplicates removed) and write one COCO-style JSON file per image, named after the image:
{"image", "height", "width", "method", "contours", "proposals": [{"image_id", "category_id",
"segmentation": RLE, "bbox": [x, y, w, h], "score"}]}. RLE masks decode with
pycocotools.mask.decode or bottomup.masks.rle_to_masks. Outputs are written atomically; images
whose output exists are skipped, so an interrupted run resumes. A manifest (versions, parameters,
timings, failures) is written beside the outputs; the exit status is 1 if any image failed."""


def run(args) -> int:
    import sys

    from bottomup.cli import run_job_from_args

    if args.n < 0:
        print("bottomup proposals: error: -n must be >= 0", file=sys.stderr)
        return 2
    method = args.method
    if args.preset is not None:  # deprecated spelling
        if args.preset == "scg-quality" or args.method is not None:
            print("bottomup proposals: error: --preset is deprecated: use --method scg|mcg (and "
                  "`contours=GPb('quality')` from Python for scg-quality)", file=sys.stderr)
            return 2
        print(f"bottomup proposals: --preset is deprecated, use --method {args.preset}", file=sys.stderr)
        method = args.preset
    params = {"n": args.n, "method": method or "scg"}
    if args.contours != "gpb":  # gpb: the configuration the shipped gPb rankers were trained on
        params["contours"] = args.contours
    return run_job_from_args("proposals", args, ".json", params)


def register(subparsers) -> None:
    """Add ``proposals`` to the ``bottomup`` command line."""
    from bottomup.cli import add_contours_argument, add_job_arguments
    from bottomup.mcg.propose import METHODS

    p = subparsers.add_parser("proposals", help="ranked object proposals per image (SCG or MCG)",
                              description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(p)
    p.add_argument("-n", type=int, default=1000, help="proposals per image (default 1000)")
    p.add_argument("--method", choices=METHODS,
                   help="scg: single-scale combinatorial grouping (default); mcg: the multiscale "
                        "hierarchy (scales 2, 1, 0.5)")
    p.add_argument("--preset", choices=("scg", "mcg", "scg-quality"), help=argparse.SUPPRESS)
    add_contours_argument(p)
    p.set_defaults(func=run)
