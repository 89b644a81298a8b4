"""Object-proposal quality and speed of SCG on BSDS500 or MSRC (ABO, recall at IoU, as functions of N).

Objects: BSDS human segments (every segment of every annotator, ignoring those under 0.1% of the
image); MSRC labelled segments of the thing classes (void segments are left out of every area).
Methods side by side at equal candidate counts (``--methods``): ``scg``, ``scg-quality``, ``mcg``
(``bottomup.mcg.proposals``); ``singletons``: the regions of the single-scale ``scg`` hierarchy
from the root downwards (the top nodes by merge order); ``selective``: the selective-search-style
grouping of Felzenszwalb segments (``bottomup.mcg.baselines.selective_search``, fast mode). Each
is scored on masks and on the boxes of its candidates. ``--contours learned`` builds every
hierarchy (``scg``, ``mcg``, ``singletons``) from the learned contours of ``deep`` instead of gPb.

    python bench/proposals.py --dataset msrc --root $BOTTOMUP_DATA/msrc --split val \
        --json out.json [--plot out.png] [--n-images 20] [--methods scg,singletons,selective] \
        [--owt steepest] [--contours learned]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bottomup.io.datasets import proposal_objects, split_images

N_GRID = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 20000)


def _meta():
    import numba

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = None
    return {"commit": commit, "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


METHODS = ("scg", "scg-quality", "mcg", "singletons", "selective")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("bsds", "msrc"), required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--json", required=True)
    ap.add_argument("--plot")
    ap.add_argument("--n-images", type=int, default=0, help="first K images only (0: all)")
    ap.add_argument("--methods", default="scg,singletons",
                    help=f"comma-separated among {','.join(METHODS)} (singletons: the regions of "
                    "the single-scale scg hierarchy from the root down; selective: "
                    "bottomup.mcg.baselines.selective_search, fast mode)")
    ap.add_argument("--preset", help="(old) same as --methods PRESET,singletons")
    ap.add_argument("--owt", choices=("plain", "steepest"),
                    help="oriented watershed of the hierarchies (default: bottomup.mcg's)")
    ap.add_argument("--contours", choices=("learned",),
                    help="hierarchies of the learned contours (deep) instead of gPb (--owt ignored)")
    ap.add_argument("-n", type=int, default=2000, help="proposals per image")
    ap.add_argument("--hier-cache", help="folder to save/load hierarchies, keyed by everything they "
                    "depend on (hierarchy_key); seconds_per_image then counts only grouping and "
                    "ranking for cached ones")
    ap.add_argument("--quotas", help="singletons,pairs,triplets,4-tuples (default: the preset's)")
    ap.add_argument("--theta", type=float, default=0.7, help="MMR weight (1: score order)")
    ap.add_argument("--ranker", help="ranker .npz (default: the shipped one for --owt)")
    args = ap.parse_args(argv)

    from bottomup.contours import get_source
    from bottomup.io import read_image
    from bottomup.masks import masks_to_boxes, union_boxes, xyxy_to_boxes
    from bottomup.mcg import proposals, tuples_to_leaf_sets
    from bottomup.mcg.baselines import selective_search
    from bottomup.mcg.cache import cached_hierarchy, hierarchy_key
    from bottomup.mcg.propose import hierarchy_for, legacy_preset
    from bottomup.metrics.proposals import ProposalParams, ProposalRecall

    methods = [m for m in (args.methods.split(",") if args.preset is None
                           else [args.preset, "singletons"]) if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown methods {bad}; choose among {METHODS}")
    owt = None if args.contours else (args.owt or "steepest")
    tag = "learned" if args.contours else owt

    def setup(preset):
        """``(method, contour source)`` of a preset of this script (``mcg.propose.legacy_preset``)."""
        method, source = legacy_preset(preset, owt)
        return method, (get_source(args.contours) if args.contours else source)
    from bottomup.mcg.ranking import Forest

    ranker = Forest.load(args.ranker) if args.ranker else None
    quotas = tuple(int(v) for v in args.quotas.split(",")) if args.quotas else None
    params = ProposalParams(n_candidates=N_GRID, iou_thresholds=(0.5, 0.7, 0.85))
    masks_m = {m: ProposalRecall(params) for m in methods}
    boxes_m = {m: ProposalRecall(params) for m in methods}
    secs = {m: [] for m in methods}
    secs_h = {m: [] for m in methods}
    counts = {m: [] for m in methods}
    items = split_images(args.dataset, args.root, args.split)
    if args.n_images:
        items = items[: args.n_images]

    def hierarchy(preset, img, name, path):
        """(hierarchy, seconds); from the cache when there (key: :func:`hierarchy_key`)."""
        t0 = time.perf_counter()
        method, source = setup(preset)
        key = hierarchy_key(path, method, source) if args.hier_cache else ""
        h, _ = cached_hierarchy(args.hier_cache, key, f"{preset}-{tag}_{args.dataset}_{name}",
                                lambda: hierarchy_for(img, method, source))
        return h, time.perf_counter() - t0

    # warm-up (JIT compile) on the first image, reported apart
    t0 = time.perf_counter()
    img0 = read_image(items[0][1])
    if any(m not in ("selective",) for m in methods):
        proposals(img0, n=10, method="scg", contours=setup("scg")[1])
    if "selective" in methods:
        selective_search(img0[:64, :64], n=10)
    warmup = time.perf_counter() - t0
    for name, path in items:
        img = read_image(path)
        gt, void = proposal_objects(args.dataset, args.root, args.split, name)
        hiers = {}
        for m in methods:
            if m == "selective":
                t0 = time.perf_counter()
                cands = selective_search(img, n=args.n)
                labels, sets, boxes, th = cands.leaf_labels, cands.leaf_sets, cands.boxes, 0.0
            else:
                preset = "scg" if m == "singletons" else m
                if preset not in hiers:
                    hiers[preset] = hierarchy(preset, img, name, path)
                h, th = hiers[preset]
                t0 = time.perf_counter()
                if m == "singletons":
                    n_nodes = h.n_nodes
                    top = np.arange(n_nodes - 1, max(n_nodes - 1 - args.n, -1), -1)
                    t = np.full((top.size, 4), -1, np.int64)
                    t[:, 0] = top
                    labels, sets = h.leaf_labels, tuples_to_leaf_sets(h, t)
                    boxes = None
                else:
                    method, source = setup(m)
                    cands = proposals(img, n=args.n, method=method, contours=source, hierarchy=h,
                                      theta=args.theta, ranker=ranker,
                                      **({"quotas": quotas} if quotas else {}))
                    labels, sets, boxes = cands.leaf_labels, cands.leaf_sets, cands.boxes
            dt = time.perf_counter() - t0
            secs[m].append(dt + th)
            secs_h[m].append(th)
            counts[m].append(len(sets))
            if len(gt) == 0:
                continue
            masks_m[m].update_leaves(gt, labels, sets, void=void)
            if boxes is None:  # singletons: boxes of the leaf sets
                from bottomup.mcg.features import leaf_stats

                boxes = union_boxes(leaf_stats(h).box, sets)
            boxes_m[m].update_boxes(xyxy_to_boxes(masks_to_boxes(gt)), boxes)
        print(f"{name}: " + ", ".join(f"{m} {counts[m][-1]} in {secs[m][-1]:.2f} s"
                                      for m in methods), file=sys.stderr)
    results = []
    for m in methods:
        for kind, metric in (("masks", masks_m[m]), ("boxes", boxes_m[m])):
            s = metric.compute()
            ns = list(params.n_candidates)
            label = m if kind == "masks" else f"{m}_boxes"
            rec = {"method": label, "kind": kind, "n": ns, "abo": s.abo.tolist(),
                   "recall": {str(t): s.recall[i].tolist()
                              for i, t in enumerate(params.iou_thresholds)},
                   "n_objects": int(s.n_objects)}
            i100, i1000 = ns.index(100), ns.index(1000)
            rec.update({"abo@100": float(s.abo[i100]), "abo@1000": float(s.abo[i1000]),
                        "recall50@1000": float(s.recall[0][i1000]),
                        "recall70@1000": float(s.recall[1][i1000]),
                        "recall70@100": float(s.recall[1][i100]),
                        "seconds_per_image": float(np.median(secs[m])),
                        "seconds_per_image_mean": float(np.mean(secs[m])),
                        "hierarchy_seconds_per_image": float(np.median(secs_h[m])),
                        "mean_candidates": float(np.mean(counts[m]))})
            results.append(rec)
            print(f"{label}: ABO@100 {rec['abo@100']:.3f} ABO@1000 {rec['abo@1000']:.3f} "
                  f"R50@1000 {rec['recall50@1000']:.3f} R70@1000 {rec['recall70@1000']:.3f} "
                  f"({rec['n_objects']} objects, {rec['mean_candidates']:.0f} candidates, "
                  f"{rec['seconds_per_image']:.2f} s/img, hierarchy "
                  f"{rec['hierarchy_seconds_per_image']:.2f})")
    print(f"warm-up {warmup:.1f} s")
    meta = _meta() | {"dataset": args.dataset, "split": args.split, "n_images": len(items),
                      "methods": methods, "owt": owt, "contours": args.contours, "theta": args.theta,
                      "quotas": args.quotas,
                      "hier_cache": args.hier_cache, "ranker": args.ranker,
                      "warmup_seconds": warmup, "argv": sys.argv}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"metadata": meta, "results": results}, fh, indent=1)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for rec in (r for r in results if r["kind"] == "masks"):
            ax[0].semilogx(rec["n"], rec["abo"], label=rec["method"])
            ax[1].semilogx(rec["n"], rec["recall"]["0.7"], label=rec["method"])
        ax[0].set(xlabel="candidates N", ylabel="average best overlap")
        ax[1].set(xlabel="candidates N", ylabel="recall @ IoU 0.7")
        ax[0].legend()
        fig.suptitle(f"{args.dataset} {args.split} ({len(items)} images)")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
