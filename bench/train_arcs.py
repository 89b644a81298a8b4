"""Train an arc scorer (``segment(arcs=...)``) on BSDS500 train.

For every training image: the contours of ``--contours`` (default the learned network of
``deep.contours``, four test scales; ``gpb``: ``GPb()`` at one scale) with that source's OWT
(the ridge OWT for the learned ones) at each of ``--scales``
(``bottomup.pipeline.finest_partition``), the features of each arc
(``bottomup.owt.arc_scores.arc_features``) and its target, the share of human segmentations that
separate its two regions (``region_pair_targets``). A small MLP (``deep.contours.arcs``) is fitted
on the arcs of all images but every ``--hold-every``-th, whose length-weighted cross-entropy is
reported beside that of the mean strength taken as a probability. The scorer is written
atomically to ``--out`` (the shipped files are ``bottomup/owt/data/arcs_learned.npz`` and
``arcs_gpb.npz``, the rules ``arcs="learned"`` and ``arcs="gpb"``).

Per-image arcs are cached in ``--cache`` (one ``.npz`` per image, written atomically, named by the
key of its image, ground truth, contours and code: ``arcs_key``), so an interrupted run resumes
and refits are cheap.

    python bench/train_arcs.py --root $BOTTOMUP_DATA/bsds500 --cache /tmp/arcs_cache \
        --out bottomup/owt/data/arcs_learned.npz [--workers 2] [--json summary.json]
    python bench/train_arcs.py --contours gpb --hold-every 0 --cache /tmp/arcs_cache \
        --out bottomup/owt/data/arcs_gpb.npz --workers 2

Any other edge detector: write its map for every training image to ``PB/{name}.png`` (8 or 16
bit gray) or ``PB/{name}.npz`` (``pb`` (H, W) in [0, 1], optionally ``oriented`` (O, H, W)) and
pass ``--pb-dir PB``. Its arcs come from the same ridge OWT as the learned contours', so use the
scorer with that policy: ``segment(image, ContourSource(your_fn, owt="ridge", ridge=LEARNED_RIDGE),
arcs=load_arc_scorer(OUT))`` (``LEARNED_RIDGE`` from ``deep.contours``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bottomup.jobs import map_unordered, stderr_counter


def read_pb(path: str):
    """``(pb, oriented or None)`` from a ``.png`` (gray, 8 or 16 bit) or ``.npz`` contour map."""
    from bottomup.io import read_image

    if path.endswith(".npz"):
        with np.load(path) as d:
            if "pb" not in d.files:
                raise ValueError(f"{path}: an .npz contour map needs a `pb` array, found {d.files}")
            return d["pb"].astype(np.float64), (d["oriented"].astype(np.float64) if "oriented" in d.files
                                                 else None)
    return read_image(path)[..., 0], None


def image_arcs(image_path: str, gt_path: str, pb_path: str | None = None, contours: str = "learned",
               scale: float = 1.0):
    """``(x, y, w)`` of one image's arcs: features, targets, lengths.

    The contours are those of the registered source ``contours`` at one scale, with its own OWT
    rule (``"learned"``: the network; ``"gpb"``: ``bottomup.contours.GPb()``), or the map in
    ``pb_path`` (:func:`read_pb`) with the learned source's ridge OWT. ``scale`` != 1: the arcs of
    the image resized as a level of ``segment``'s pyramid (``image_pyramid``), the human
    segmentations resized to it by nearest neighbour.
    """
    from bottomup.contours import get_source
    from bottomup.io import read_bsds_gt, read_image
    from bottomup.owt.arc_scores import arc_features, region_pair_targets
    from bottomup.pipeline import finest_partition

    img = read_image(image_path)  # already the (H, W, 3) float64 contract
    segs = read_bsds_gt(gt_path).segmentations
    if scale != 1.0:
        from skimage.transform import resize

        from bottomup.hierarchy.multiscale import image_pyramid

        if pb_path is not None:
            raise ValueError("--pb-dir maps are used at their own size (scale 1 only)")
        img = image_pyramid(img, [scale])[0]
        segs = [resize(g, img.shape[:2], order=0, preserve_range=True, anti_aliasing=False).astype(g.dtype)
                for g in segs]
    source = get_source(contours).single_scale()
    if pb_path is not None:
        pb, oriented = read_pb(pb_path)
        if pb.shape != img.shape[:2]:
            raise ValueError(f"{pb_path}: contour map of shape {pb.shape}, image {img.shape[:2]}")
        source = source.with_policy(fn=lambda _: (pb, oriented), name="pb-dir")  # the learned OWT rule
    pb, oriented, labels, pieces = finest_partition(img, source)
    f = arc_features(img, pb, oriented, labels, pieces)
    y = region_pair_targets(labels, f.regions, segs)
    return f.x, y, f.length


def arcs_key(image_path, gt_path, pb_path=None, contours="learned", scale=1.0) -> str:
    """Cache key of :func:`image_arcs` (``bottomup.io.cache_key``): the image, the ground truth,
    the contours (the ``--pb-dir`` map, or the shipped contour network) and the code (``bottomup``,
    and ``deep`` for the network)."""
    from bottomup.contours import get_source
    from bottomup.io import cache_key

    if pb_path is None and contours != "learned":
        source = get_source(contours).single_scale()
        params = {"contours": source.spec()} | ({"scale": scale} if scale != 1.0 else {})
        return cache_key("arc-features", params=params,
                         files=[image_path, gt_path, *source.model_files()], code=["bottomup"])
    if pb_path is None:
        from deep.contours.net import WEIGHTS_FILE

        return cache_key("arc-features", params={"contours": "learned"},
                         files=[image_path, gt_path, WEIGHTS_FILE], code=["bottomup", "deep"])
    return cache_key("arc-features", params={"contours": "pb-dir"}, files=[image_path, gt_path, pb_path],
                     code=["bottomup"])


def _cache_one(job):
    image_path, gt_path, pb_path, source, scale, out = job
    if os.path.exists(out):  # the name holds arcs_key: same inputs, contours and code
        return out
    if pb_path is None and source == "learned":
        import torch

        torch.set_num_threads(1)
    x, y, w = image_arcs(image_path, gt_path, pb_path, "learned" if pb_path else source, scale)
    tmp = out + ".tmp.npz"
    np.savez(tmp, x=x, y=y, w=w, source=np.array(source))
    os.replace(tmp, out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "bsds500"),
                   help="the bsds500 folder (default $BOTTOMUP_DATA/bsds500)")
    p.add_argument("--split", default="train")
    p.add_argument("--cache", required=True, help="folder of per-image arcs (created)")
    p.add_argument("--out", required=True, help="scorer file (.npz)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--max-images", type=int, default=0, help="first N images only (0: all)")
    p.add_argument("--hold-every", type=int, default=10,
                   help="hold out every N-th image from the fit and report on it (0: none)")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pb-dir", help="contour maps of another detector, PB/{name}.png or .npz "
                                    "(default: the learned network)")
    p.add_argument("--contours", default="learned",
                   help="registered contour source whose arcs to learn (learned, gpb, ...); its own OWT rule")
    p.add_argument("--scales", default="1",
                   help="comma-separated image scales whose arcs all go into the fit (e.g. 1,0.5: the levels "
                        "of the default two-scale hierarchy); not with --pb-dir")
    p.add_argument("--json", help="write the summary here too")
    args = p.parse_args(argv)

    from bottomup.owt.arc_scores import save_arc_scorer
    from deep.contours.arcs import fit_arc_scorer, weighted_bce

    root = Path(args.root)
    img_dir = root / "data" / "images" / args.split
    gt_dir = root / "data" / "groundTruth" / args.split
    if not img_dir.is_dir() or not gt_dir.is_dir():
        p.error(f"--root must hold data/images/{args.split} and data/groundTruth/{args.split}: {root}")
    names = sorted(f.stem for f in img_dir.glob("*.jpg") if (gt_dir / f"{f.stem}.mat").exists())
    pb_paths = {n: None for n in names}
    source = args.contours
    if args.pb_dir:
        pb_dir = Path(args.pb_dir)
        source = f"pb-dir {pb_dir.resolve()}"
        for n in names:
            found = [pb_dir / f"{n}{e}" for e in (".npz", ".png") if (pb_dir / f"{n}{e}").exists()]
            pb_paths[n] = str(found[0]) if found else None
        missing = [n for n in names if pb_paths[n] is None]
        if missing:
            p.error(f"--pb-dir {pb_dir} has no {missing[0]}.png or .npz ({len(missing)} images missing)")
    if args.max_images:
        names = names[:args.max_images]
    if not names:
        p.error(f"no images with ground truth in {img_dir}")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    scales = [float(v) for v in args.scales.split(",")]
    if args.pb_dir and scales != [1.0]:
        p.error("--scales other than 1 need a registered --contours source, not --pb-dir")
    jobs = []
    for sc in scales:
        for n in names:
            img, gt = img_dir / f"{n}.jpg", gt_dir / f"{n}.mat"
            key = arcs_key(img, gt, pb_paths[n], source if pb_paths[n] is None else "learned", sc)
            out = str(cache / f"{args.split}_{n}-{key}.npz")
            jobs.append((str(img), str(gt), pb_paths[n], source, sc, out))
    t0 = time.perf_counter()
    for _ in map_unordered(_cache_one, jobs, args.workers, progress=stderr_counter("arcs")):
        pass
    t_arcs = time.perf_counter() - t0

    fit, hold = [], []
    for i, (*_, path) in enumerate(jobs):
        with np.load(path) as d:
            held = args.hold_every and (i % len(names)) % args.hold_every == 0  # same images at every scale
            (hold if held else fit).append((d["x"], d["y"], d["w"]))
    if not fit:
        p.error("no images left to fit on; lower --hold-every or add images")

    def cat(parts, j):
        return np.concatenate([q[j] for q in parts])

    x, y, w = (cat(fit, j) for j in range(3))
    t1 = time.perf_counter()
    meta = {"data": f"BSDS500 {args.split}", "scales": scales, "images_fit": len(fit),
            "images_held_out": len(hold),
            "arcs_fit": int(x.shape[0]), "hidden": args.hidden, "layers": args.layers,
            "epochs": args.epochs, "seed": args.seed,
            "contours": ("learned (deep/weights/contours_lite0.pt, 4 test scales), ridge OWT"
                         if source == "learned"
                         else source + (", ridge OWT" if args.pb_dir else ", its own OWT"))}
    scorer = fit_arc_scorer(x, y, w, hidden=args.hidden, layers=args.layers, epochs=args.epochs,
                            seed=args.seed, meta=meta)
    t_fit = time.perf_counter() - t1
    summary = {"images": len(jobs), "seconds_arcs": round(t_arcs, 1), "seconds_fit": round(t_fit, 1),
               "fit_bce": weighted_bce(scorer(x), y, w)}
    if hold:
        xh, yh, wh = (cat(hold, j) for j in range(3))
        summary["hold_bce"] = weighted_bce(scorer(xh), yh, wh)
        summary["hold_bce_mean_strength"] = weighted_bce(xh[:, 0], yh, wh)
        summary["hold_bce_constant"] = weighted_bce(np.full(yh.shape, np.average(y, weights=w)), yh, wh)
    scorer.meta.update({k: round(v, 4) for k, v in summary.items() if k.endswith("bce") or "bce_" in k})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_arc_scorer(args.out, scorer)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
