"""``bottomup proposals``: ranked SCG/MCG object proposals per image (a resumable folder job)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

_DESCRIPTION = """\
Compute ranked object proposals of each image (combinatorial grouping of 1 to 4 adjacent regions
of the OWT-UCM hierarchy (SCG) or of the multiscale one (MCG), ranked by a random forest,
near-duplicates removed, diversified by maximal marginal relevance) and write one COCO results
file per image, <name>.json: a JSON list of {"image_id", "category_id": 1, "segmentation": RLE,
"score", "bbox": [x, y, w, h]}, best first, that pycocotools' COCO.loadRes reads (it refuses an
empty list: an image with no proposal gives []). image_id is the file name's stem, as an integer
when it is all digits (COCO and BSDS names). RLE masks decode with pycocotools.mask.decode or
bottomup.masks.rle_to_masks.

score in [0, 1]: the MMR objective 0.7 * s - 0.3 * J (s: the forest's predicted overlap with an
object, J: the largest overlap with a better-ranked proposal; MCG's ranking) plus 0.3. The map is
monotone, so the order is MCG's; Candidates.scores (Python) holds the objective itself.

--overlay K also writes <name>_overlay.png: the top K proposals in colour on the image, each
numbered by its rank, with a legend of ranks and scores.

Changed in 0.2: the file used to be a dict {"image", "height", "width", "method", "contours",
"proposals": [...]}; it is now the bare list. The image's height, width, method and contours are
in the record .<name>.json.params.json beside it (under "info") and in the manifest. Outputs are
written atomically; a rerun skips the images whose output exists with the same parameters, and
stops before it starts when outputs of other parameters (or without a record) are there, unless
--overwrite is given. The exit status is 1 if any image failed, 2 if the run could not start."""


def unit_scores(scores, theta: float | None = None):
    """Map MCG's MMR objective ``theta * s - (1 - theta) * J`` (``s``, ``J`` in [0, 1]) onto [0, 1]
    by adding ``1 - theta`` (default ``bottomup.mcg.propose.THETA``, 0.7); monotone, so the
    ranking is unchanged."""
    import numpy as np

    if theta is None:
        from bottomup.mcg.propose import THETA as theta
    return np.clip(np.asarray(scores, np.float64) + (1.0 - theta), 0.0, 1.0)


def proposals_task(in_path, out_path, *, n: int = 1000, method: str = "scg", contours=None,
                   overlay: int = 0) -> dict:
    """The ``proposals`` folder-job task: a COCO results list of one image's proposals.

    Writes ``<stem>_overlay.png`` (top ``overlay`` proposals with a legend) when ``overlay > 0``,
    then ``out_path`` (the JSON list), each atomically; returns the image metadata (height,
    width, method, contours) that the job keeps in the output's record.
    """
    import json

    from bottomup.io import read_image
    from bottomup.io.files import atomic_path
    from bottomup.jobs import coco_image_id
    from bottomup.mcg.propose import proposal_source, proposals

    img = read_image(in_path)
    cands = proposals(img, n=n, method=method, contours=contours)
    recs = cands.to_coco(image_id=coco_image_id(in_path))
    for rec, s in zip(recs, unit_scores(cands.scores), strict=True):
        rec["score"] = float(s)
    info = {"image": Path(in_path).name, "image_id": coco_image_id(in_path), "height": int(img.shape[0]),
            "width": int(img.shape[1]), "method": method,
            "contours": contours if isinstance(contours, str) else proposal_source(contours).name,
            "n": len(cands), "score": "MMR objective + 0.3, in [0, 1]"}
    if overlay:
        from bottomup.viz import draw_proposals, write_image

        k = min(int(overlay), len(cands))
        name = f"{Path(out_path).stem}_overlay.png"
        write_image(Path(out_path).with_name(name),
                    draw_proposals(img, cands.masks(range(k)), unit_scores(cands.scores[:k])))
        info["outputs"] = [name]
    with atomic_path(out_path) as tmp, open(tmp, "w") as fh:
        json.dump(recs, fh)
    return info


def _proposals_model_files(*, n=1000, method="scg", contours=None, overlay=0) -> list:
    from bottomup.mcg.propose import proposal_source
    from bottomup.mcg.ranking import ranker_path
    from bottomup.pipeline import model_files

    source = proposal_source(contours)
    return [os.fspath(f) for f in (ranker_path(method, source.ranker), *model_files(source))]


proposals_task.model_files = _proposals_model_files


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
    if args.overlay < 0:
        print("bottomup proposals: error: --overlay must be >= 0", file=sys.stderr)
        return 2
    params = {"n": args.n, "method": method or "scg"}
    if args.contours != "gpb":  # gpb: the configuration the shipped gPb rankers were trained on
        params["contours"] = args.contours
    if args.overlay:
        params["overlay"] = args.overlay
    return run_job_from_args("proposals", args, ".json", params)


def register(subparsers) -> None:
    """Add ``proposals`` to the ``bottomup`` command line."""
    from bottomup.cli import add_command, add_contours_argument, add_job_arguments
    from bottomup.mcg.propose import METHODS

    p = add_command(subparsers, "proposals", run, "ranked object proposals per image (SCG or MCG)",
                    _DESCRIPTION)
    add_job_arguments(p)
    p.add_argument("-n", type=int, default=1000, help="proposals per image (default 1000)")
    p.add_argument("--method", choices=METHODS,
                   help="scg: single-scale combinatorial grouping (default); mcg: the multiscale "
                        "hierarchy (scales 2, 1, 0.5)")
    p.add_argument("--preset", choices=("scg", "mcg", "scg-quality"), help=argparse.SUPPRESS)
    add_contours_argument(p)
    p.add_argument("--overlay", type=int, default=0, metavar="K",
                   help="also write <name>_overlay.png: the top K proposals with a legend (rank, score)")
