"""``bottomup proposals``: ranked SCG object proposals per image (a resumable folder job)."""

from __future__ import annotations

import argparse

_DESCRIPTION = """\
Compute ranked object proposals of each image (SCG: combinatorial grouping of 1 to 4 adjacent
regions of the gPb-owt-ucm hierarchy, ranked by a random forest, near-duplicates removed) and write
one COCO-style JSON file per image, named after the image: {"image", "height", "width", "preset",
"proposals": [{"image_id", "category_id", "segmentation": RLE, "bbox": [x, y, w, h], "score"}]}.
RLE masks decode with pycocotools.mask.decode or bottomup.masks.rle_to_masks. Outputs are written
atomically; images whose output exists are skipped, so an interrupted run resumes. A manifest
(versions, parameters, timings, failures) is written beside the outputs; the exit status is 1 if
any image failed."""


def run(args) -> int:
    from bottomup._segment_cli import contours_param, run_job_from_args

    if args.n < 0:
        print("bottomup proposals: error: -n must be >= 0")
        return 2
    params = {"n": args.n, "preset": args.preset} | contours_param(args)
    return run_job_from_args("proposals", args, ".json", params)


def register(subparsers) -> None:
    """Add ``proposals`` to the ``bottomup`` command line."""
    from bottomup._segment_cli import add_contours_argument, add_job_arguments
    from bottomup.mcg.pipeline import PRESETS

    p = subparsers.add_parser("proposals", help="ranked object proposals per image (SCG)",
                              description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(p)
    p.add_argument("-n", type=int, default=1000, help="proposals per image (default 1000)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="scg",
                   help="scg: gPb contours, preset mcg (default); scg-quality: gPb quality contours; "
                   "mcg: multiscale hierarchy (scales 2, 1, 0.5)")
    add_contours_argument(p)
    p.set_defaults(func=run)
