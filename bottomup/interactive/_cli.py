"""``bottomup interactive``: complete scribbles into a full segmentation."""

from __future__ import annotations

import os
import sys

import numpy as np

_DESCRIPTION = """\
Extend scribbles to a full segmentation along an OWT-UCM hierarchy (Arbelaez et al., TPAMI 2011,
section 5): every region takes the label of the scribble it reaches at the smallest ultrametric
distance.

IMAGE is the picture to segment. SEEDS is a picture of the same size holding the scribbles:
either a single-channel image of integer labels (0 = no scribble, 1..K = object), or a colour
image on black where each distinct colour is one object. The result is written to OUT as a
picture: for label scribbles, the raw labels 1..K as 8- or 16-bit gray (values that look black in
a viewer: read them back as numbers), for colour scribbles the scribble colours. Beside it,
<OUT stem>_overlay.png shows the result to the eye: each label's colour (the scribble colours, or
bottomup.viz.palette for label scribbles) blended over IMAGE, with the region boundaries in red.

The hierarchy comes from --ucm FILE (a ucm2 .mat/.npz/.png as `bottomup segment` writes it, or a
hierarchy .npz saved by bottomup) when given; otherwise the engine computes the best one it has
for IMAGE, the same as `bottomup annotate` (bottomup.interactive.default_hierarchy): learned
contours when torch is installed, gPb otherwise (--contours picks one).
"""


def register(subparsers) -> None:
    """Add the ``interactive`` subcommand to a ``bottomup`` argument parser."""
    from bottomup.cli import add_command

    p = add_command(subparsers, "interactive", run,
                    "complete scribbles into a segmentation along a UCM hierarchy", _DESCRIPTION)
    p.add_argument("image", metavar="IMAGE", help="image to segment")
    p.add_argument("seeds", metavar="SEEDS", help="scribbles: label image or colours on black")
    p.add_argument("--out", "-o", required=True, metavar="OUT", help="output picture (.png)")
    p.add_argument(
        "--ucm",
        metavar="FILE",
        default=None,
        help="use this ucm2 (.mat/.npz/.png) or hierarchy .npz instead of computing one",
    )
    p.add_argument(
        "--contours",
        choices=("auto", "learned", "gpb"),
        default="auto",
        help="contours of the hierarchy without --ucm: auto (default: learned when torch is "
        "installed, else gPb), learned or gpb",
    )


def _read_seeds(path: str):
    """Return (labels (H, W) int64, palette or None) from a seeds picture."""
    import cv2

    if not os.path.exists(path):
        raise FileNotFoundError(f"seeds file not found: {path}")
    arr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError(f"cannot decode seeds file {path!r}: not an image OpenCV can read")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        return arr.reshape(arr.shape[:2]).astype(np.int64), None
    if arr.ndim == 3 and (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
        return arr[..., 0].astype(np.int64), None  # gray stored as colour
    flat = arr.reshape(-1, arr.shape[2])
    colors, inv = np.unique(flat, axis=0, return_inverse=True)
    inv = inv.reshape(arr.shape[:2])
    black = np.flatnonzero((colors == 0).all(axis=1))
    labels = inv + 1
    if black.size:
        labels[inv == black[0]] = 0
        labels[inv > black[0]] -= 1
        colors = np.delete(colors, black[0], axis=0)
    palette = np.concatenate([np.zeros((1, colors.shape[1]), colors.dtype), colors])
    return labels.astype(np.int64), palette


def run(args) -> int:
    """Execute ``bottomup interactive``; returns the exit status."""
    import cv2

    from bottomup.hierarchy import Hierarchy
    from bottomup.interactive.segment import default_hierarchy, segment
    from bottomup.io import read_image

    try:
        image = read_image(args.image)
        seeds, palette = _read_seeds(args.seeds)
        if seeds.shape != image.shape[:2]:
            raise ValueError(
                f"SEEDS {args.seeds!r} (shape {seeds.shape}) must have the size of IMAGE "
                f"{args.image!r} (shape {image.shape[:2]})"
            )
        if args.ucm:
            hierarchy = Hierarchy.load(args.ucm)
            if hierarchy.shape != image.shape[:2]:
                raise ValueError(
                    f"--ucm {args.ucm!r} describes a {hierarchy.shape} image, IMAGE is "
                    f"{image.shape[:2]}"
                )
        else:
            hierarchy = default_hierarchy(image, contours=args.contours)
        labels = segment(hierarchy, seeds)
        if palette is not None:
            out = palette[labels]
        else:
            out = labels.astype(np.uint8 if labels.max() < 256 else np.uint16)
        folder = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        ext = os.path.splitext(args.out)[1] or ".png"
        ok, buf = cv2.imencode(ext, out)
        if not ok:
            raise ValueError(f"cannot encode the result as {ext!r}; use a .png output")
        from bottomup.io.files import atomic_path
        from bottomup.viz import overlay_labels, write_image

        with atomic_path(args.out) as tmp:
            buf.tofile(str(tmp))
        colors = None
        if palette is not None:  # OpenCV's BGR (8 or 16 bit) -> RGB uint8
            colors = palette[:, ::-1] // (257 if palette.dtype == np.uint16 else 1)
            colors = colors.astype(np.uint8)
        overlay_path = os.path.splitext(args.out)[0] + "_overlay.png"
        write_image(overlay_path, overlay_labels(image, labels, colors=colors))
    except (OSError, ValueError, TypeError) as exc:
        print(f"bottomup interactive: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} and {overlay_path}: {int(labels.max())} label(s), "
          f"{hierarchy.n_leaves} leaf regions")
    return 0
