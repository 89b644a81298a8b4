"""Write one 8-bit thinned boundary map per image (gPb or the learned CNN), for the BSDS benchmark.

For every ``*.jpg``/``*.png`` in ``--images``, runs :func:`bottomup.contours.gpb` (or, with
``--preset learned``, :func:`deep.contours.learned_contours`, theta = its best orientation
bin), thins it with
oriented non-maximum suppression (``Contours.thin()``) and writes ``<id>.png`` =
``round(thin * 255)`` as uint8 to ``--out``. Files are written atomically (temporary name, then
rename) and existing outputs are skipped, so an interrupted run resumes where it stopped.

Usage::

    python bench/contours_to_dir.py --images DIR --out DIR [--preset quality|balanced|fast|mcg|learned]
                                    [--limit N] [--jobs 1] [--oriented]

``--oriented`` also writes ``<id>_oriented.npz`` (the (8, H, W) stack, float32) for OWT-UCM.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _one(path: Path, out_dir: Path, preset: str, oriented: bool) -> tuple[str, float]:
    import cv2
    import numpy as np

    from bottomup.contours import gpb
    from bottomup.io import read_image

    target = out_dir / f"{path.stem}.png"
    if target.exists():
        return path.stem, 0.0
    t0 = time.perf_counter()
    if preset == "learned":
        from bottomup.contours import Contours
        from bottomup.contours.nms import best_orientation
        from deep.contours import learned_contours

        pb, ori = learned_contours(read_image(str(path)))
        c = Contours(pb, ori, best_orientation(ori))
    else:
        c = gpb(read_image(str(path)), preset)
    thin = np.clip(np.round(c.thin() * 255.0), 0, 255).astype(np.uint8)
    tmp = out_dir / f".{path.stem}.{os.getpid()}.tmp.png"
    if not cv2.imwrite(str(tmp), thin):
        raise OSError(f"could not write {tmp}")
    if oriented:
        tmpz = out_dir / f".{path.stem}.{os.getpid()}.tmp.npz"
        np.savez_compressed(tmpz, oriented=c.oriented.astype(np.float32))
        os.replace(tmpz, out_dir / f"{path.stem}_oriented.npz")
    os.replace(tmp, target)
    return path.stem, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=Path, required=True, help="folder of input images")
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    from bottomup.contours import PRESETS

    ap.add_argument("--preset", choices=[*PRESETS, "learned"], default="quality",
                    help="gPb preset, or 'learned': the CNN of deep (default test scales)")
    ap.add_argument("--limit", type=int, default=None, help="process the first N images only")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--oriented", action="store_true", help="also save the oriented stack")
    args = ap.parse_args(argv)
    if not args.images.is_dir():
        ap.error(f"--images {args.images} is not a folder")
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    if args.limit is not None:
        paths = paths[: args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.jobs <= 1:
        results = [_one(p, args.out, args.preset, args.oriented) for p in paths]
    else:
        with ProcessPoolExecutor(args.jobs) as ex:
            results = list(
                ex.map(_one, paths, [args.out] * len(paths), [args.preset] * len(paths),
                       [args.oriented] * len(paths))
            )  # fmt: skip
    done = [t for _, t in results if t > 0]
    print(
        f"{len(paths)} images, {len(done)} computed"
        + (f", median {sorted(done)[len(done) // 2]:.2f} s per image" if done else "")
    )


if __name__ == "__main__":
    main()
