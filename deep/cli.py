"""``bottomup deep``: semantic labels, instances and overlays with the deep heads (needs torch)."""

from __future__ import annotations

import sys

from bottomup.cli import add_command, add_job_arguments, run_job_from_args

_DESCRIPTION = """\
Run deep.segment on each image: SCG proposals scored and refined by the hypercolumn heads
(shipped weights: MSRC-21), or with --model maskrcnn Mask R-CNN (shipped MSRC-21 weights, or
--weights W of bench/maskrcnn.py train; labels 255 where no confident instance lies).
Writes per image <name>_labels.png (uint8 class ids),
<name>_overlay.jpg and <name>.json, each atomically, the JSON last. The JSON is a COCO results
list that pycocotools' COCO.loadRes reads: {"image_id", "category_id", "category_name",
"segmentation": RLE, "bbox": [x, y, w, h], "score"} per instance; image_id is the file name's
stem (an integer when all digits), category_id the index in the class list, score the class
probability in [0, 1].

Changed in 0.2: the JSON used to be a dict {"image", "height", "width", "classes", "instances"};
the image size and the class list are now in the record .<name>.json.params.json beside it
(under "info") and in the manifest. A rerun skips the images whose output exists with the same
parameters and model files (their SHA-256 are recorded), and stops before it starts when other
ones made the outputs there, unless --overwrite is given. Needs the `deep` extra (torch)."""


def run(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("bottomup deep: error: torch is not installed; install the `deep` extra "
              "(pip install torch==2.13.0 && pip install -e '.[deep]')", file=sys.stderr)
        return 2
    if args.model == "maskrcnn" and not args.weights:
        import os

        from .segmenter import MASKRCNN_TRAIN, maskrcnn_weights_path

        if not os.path.isfile(maskrcnn_weights_path()):
            print("bottomup deep: error: --model maskrcnn needs --weights: this installation has no "
                  f"shipped Mask R-CNN weights; train them with `{MASKRCNN_TRAIN}`", file=sys.stderr)
            return 2
    params = {"device": args.device, "min_score": args.min_score}
    if args.model != "heads":  # absent for the heads, so records of earlier versions still match
        params["model"] = args.model
    if args.weights:
        params["weights"] = args.weights
    return run_job_from_args("deep", args, ".json", params)


def register(subparsers) -> None:
    """Add ``deep`` to the ``bottomup`` command line."""
    p = add_command(subparsers, "deep", run, "semantic + instance segmentation (deep heads, torch)",
                    _DESCRIPTION)
    add_job_arguments(p)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--model", choices=("heads", "maskrcnn"), default="heads",
                   help="heads: SCG proposals scored by the region heads (default); maskrcnn: Mask "
                        "R-CNN with its RPN (shipped weights, or --weights)")
    p.add_argument("--weights", help="heads of bench/msrc.py train, or for --model maskrcnn the "
                                     "maskrcnn.ckpt of bench/maskrcnn.py train (default: shipped)")
    p.add_argument("--min-score", type=float, default=0.0, help="drop instances scoring below this")
