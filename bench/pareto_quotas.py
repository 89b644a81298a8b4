"""Learn the grouping quotas of SCG/MCG on a Pareto front (as MCG) from the train splits.

For each training image: the hierarchy of the preset (cut to ``MAX_LEAVES`` regions as
``proposals`` does) -> every singleton, pair, triplet and 4-tuple up to large quotas
(``--big``; each list is a prefix of the one a smaller quota gives) -> for each ground-truth
object and each type, the best IoU among the first ``grid[s]`` candidates of that type. Then
:func:`bottomup.mcg.grouping.pareto_quotas` walks the front greedily up to ``--budget``
candidates per image (default: the mean pool size of the current quotas on the same images).

Per-image curves are cached in ``--cache`` (``pareto-{tag}_{dataset}_{name}-{key}.npz``, the key
covering everything a curve depends on: ``bottomup.mcg.cache.hierarchy_key`` with the quotas and the grid).

    python bench/pareto_quotas.py --root $BOTTOMUP_DATA --cache /tmp/pareto --preset mcg \
        --stride 3 --bsds-images 20 --msrc-images 30 --json quotas.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bottomup.io.datasets import proposal_objects, split_images
from bottomup.metrics.proposals import overlaps_leaves

GRID = (0, 100, 200, 350, 500, 700, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000)


def curves(h, gt, void, big, grid):
    """(4, G, S) best IoU per type, object and grid step; (4,) list lengths."""
    from bottomup.mcg.grouping import combinatorial_grouping, tuples_to_leaf_sets

    tuples = combinatorial_grouping(h, big)
    kind = (tuples >= 0).sum(axis=1) - 1
    sets = tuples_to_leaf_sets(h, tuples)
    iou = overlaps_leaves(gt, h.leaf_labels, sets, void=void) if len(gt) else np.zeros((len(tuples), 0))
    out = np.zeros((4, iou.shape[1], len(grid)))
    lengths = np.zeros(4, np.int64)
    for t in range(4):
        rows = iou[kind == t]
        lengths[t] = rows.shape[0]
        if rows.shape[0] and rows.shape[1]:
            pref = np.maximum.accumulate(rows, axis=0)
            for s, g in enumerate(grid):
                if g > 0:
                    out[t, :, s] = pref[min(g, rows.shape[0]) - 1]
    return out, lengths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="folder holding bsds500/ and msrc/")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--preset", default="mcg")
    ap.add_argument("--owt", default="steepest", choices=("plain", "steepest"))
    ap.add_argument("--bsds-images", type=int, default=20)
    ap.add_argument("--msrc-images", type=int, default=30)
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--offset", type=int, default=1,
                    help="first image of each stride (1: not the images the rankers were trained on)")
    ap.add_argument("--big", default="2000,15000,15000,15000", help="quotas of the full lists")
    ap.add_argument("--budget", type=float, help="mean pool size (default: that of SCG_QUOTAS)")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)

    from bottomup.io import read_image
    from bottomup.mcg.cache import hierarchy_key
    from bottomup.mcg.grouping import SCG_QUOTAS, achievable_quality, coarsen_leaves, pareto_quotas
    from bottomup.mcg.propose import MAX_LEAVES, hierarchy_for, legacy_preset

    method, source = legacy_preset(args.preset, args.owt)

    big = tuple(int(v) for v in args.big.split(","))
    grid = np.asarray([g for g in GRID if g <= max(big)])
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    best, lengths = [], []
    for ds, k in (("bsds", args.bsds_images), ("msrc", args.msrc_images)):
        sub = Path(args.root) / ("bsds500" if ds == "bsds" else "msrc")
        items = split_images(ds, sub, "train")[args.offset::args.stride][:k]
        for name, path in items:
            gt_path = (sub / "data" / "groundTruth" / "train" / f"{name}.mat" if ds == "bsds"
                       else sub / "groundTruth" / f"{name}_GT.mat")
            key = hierarchy_key(path, method, source, files=[gt_path], extra={
                "stage": "pareto", "big": list(big), "grid": grid.tolist(), "max_leaves": MAX_LEAVES})
            f = cache / f"pareto-{args.preset}-{args.owt}_{ds}_{name}-{key}.npz"
            if not f.exists():
                t0 = time.perf_counter()
                img = read_image(path)
                gt, void = proposal_objects(ds, sub, "train", name)
                h = coarsen_leaves(hierarchy_for(img, method, source), MAX_LEAVES)
                b, n = curves(h, gt, void, big, grid)
                tmp = f.with_suffix(".part.npz")
                np.savez(tmp, best=b, lengths=n, grid=grid)
                tmp.rename(f)
                print(f"{ds} {name}: {len(gt)} objects, lists {n.tolist()}, "
                      f"{time.perf_counter() - t0:.1f} s", flush=True)
            z = np.load(f)
            if not np.array_equal(z["grid"], grid):
                raise SystemExit(f"{f} was computed on another grid; remove it")
            best.append(z["best"])
            lengths.append(z["lengths"])
    lengths = np.asarray(lengths)
    budget = args.budget or float(np.minimum(np.asarray(SCG_QUOTAS)[None], lengths).sum(axis=1).mean())
    quotas, front = pareto_quotas(best, lengths, grid, budget=budget)
    quotas = tuple(min(q, b) for q, b in zip(quotas, big, strict=True))  # beyond big: whole list

    def quality(q):  # quotas -> the grid steps at or below them
        return achievable_quality(best, [np.searchsorted(grid, min(v, grid[-1]), side="right") - 1
                                         for v in q])

    info = {"preset": args.preset, "owt": args.owt, "images": len(best),
            "objects": int(sum(b.shape[1] for b in best)), "budget": budget,
            "quotas": list(quotas), "achievable_abo": quality(quotas),
            "scg_quotas": list(SCG_QUOTAS), "scg_quotas_achievable_abo": quality(SCG_QUOTAS),
            "grid": grid.tolist(), "front": front}
    Path(args.json).write_text(json.dumps(info, indent=1))
    print(json.dumps({k: v for k, v in info.items() if k not in ("front", "grid")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
