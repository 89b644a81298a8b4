"""Train SCG's candidate ranker (a random forest, as MCG's) on BSDS500 train and MSRC train.

For each training image: gPb ``fast`` hierarchy -> candidate pool (``bottomup.mcg.candidate_pool``)
-> 17 features per candidate; target = best IoU of the candidate with a ground-truth object
(BSDS human segments >= 0.1% of the image; MSRC thing segments, void pixels left out). Samples per
image: the best candidate of every object plus ``--per-image`` random others. The forest
(scikit-learn ``RandomForestRegressor``: 50 trees and max_features 5 as MCG's regRF defaults;
min_samples_leaf 20 rather than 5 for a smaller file) is written as arrays to
``bottomup/mcg/data/scg_ranker.npz`` (``--owt plain``) or ``scg_ranker_steepest.npz``
(``--owt steepest``: hierarchies of ``segment(..., owt="steepest")``).

Per-image pools are cached in ``--cache`` (files ``{preset}-{owt}_{dataset}_{name}.npz``) so refits
are cheap.

    python bench/train_ranker.py --root $BOTTOMUP_DATA --cache /tmp/mcg_cache --owt steepest \
        [--bsds-images 100] [--msrc-images 130] [--out bottomup/mcg/data/scg_ranker_steepest.npz]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bottomup.io.datasets import proposal_objects, split_images
from bottomup.metrics.proposals import overlaps_leaves


def pool_file(cache: Path, dataset: str, name: str, tag: str) -> Path:
    return cache / f"{tag}_{dataset}_{name}.npz"


def cache_tag(preset: str, owt: str, contours, quotas=None) -> str:
    """File tag of a kind of pool: ``{preset}-{owt or 'learned-arcs'}[-q{s}-{p}-{t}-{q}]``.

    (``learned-arcs``: learned contours with learned arc scores, the default since 2026-11-26;
    pools tagged ``learned`` came from mean-strength arcs.)
    """
    tag = f"{preset}-{'learned-arcs' if contours else owt}"
    return tag if quotas is None else tag + "-q" + "-".join(map(str, quotas))


def build_cache(root: Path, cache: Path, dataset: str, n_images: int, stride: int, preset: str,
                shard: int = 0, n_shards: int = 1, owt: str = "plain", contours=None, quotas=None):
    from bottomup.io import read_image
    from bottomup.mcg.grouping import coarsen_leaves
    from bottomup.mcg.pipeline import MAX_LEAVES, PRESETS, candidate_pool, hierarchy_for

    sub = root / ("bsds500" if dataset == "bsds" else "msrc")
    items = split_images(dataset, sub, "train")[::stride]
    if n_images:
        items = items[:n_images]
    items = items[shard::n_shards]
    for name, path in items:
        out = pool_file(cache, dataset, name, cache_tag(preset, owt, contours, quotas))
        if out.exists():
            continue
        t0 = time.perf_counter()
        img = read_image(path)
        gt, void = proposal_objects(dataset, sub, "train", name)
        # as proposals() does: the multiscale hierarchy is first cut to MAX_LEAVES regions
        h = coarsen_leaves(hierarchy_for(img, preset, owt=None if contours else owt, contours=contours),
                           MAX_LEAVES)
        pool = candidate_pool(h, PRESETS[preset][1] if quotas is None else quotas)
        iou = overlaps_leaves(gt, h.leaf_labels, pool.leaf_sets, void=void)
        best = iou.max(axis=1) if iou.shape[1] else np.zeros(iou.shape[0])
        best_of_obj = iou.argmax(axis=0) if iou.shape[1] else np.zeros(0, np.int64)
        tmp = out.with_suffix(".part.npz")
        np.savez(tmp, features=pool.features.astype(np.float32), target=best.astype(np.float32),
                 best_of_obj=best_of_obj.astype(np.int64))
        tmp.rename(out)
        print(f"{dataset} {name}: {pool.features.shape[0]} candidates, {len(gt)} objects, "
              f"{time.perf_counter() - t0:.1f} s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="folder holding bsds500/ and msrc/")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--preset", default="scg")
    ap.add_argument("--owt", default="plain", choices=("plain", "steepest"),
                    help="oriented watershed of the hierarchies (bottomup.segment's owt)")
    ap.add_argument("--contours", choices=("learned",),
                    help="hierarchies of the learned contours (deep; owt is then segment's ridge)")
    ap.add_argument("--quotas", help="grouping quotas s,p,t,q (default: the preset's); cache files get "
                    "the tag {preset}-{owt}-q{s}-{p}-{t}-{q}")
    ap.add_argument("--bsds-images", type=int, default=0)
    ap.add_argument("--msrc-images", type=int, default=0)
    ap.add_argument("--stride", type=int, default=1, help="take every k-th training image")
    ap.add_argument("--per-image", type=int, default=300)
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--n-shards", type=int, default=1)
    ap.add_argument("--only-cache", action="store_true")
    ap.add_argument("--out", help="default: bottomup.mcg.ranking.ranker_path(owt, preset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-samples-leaf", type=int, default=20,
                    help="MCG's regRF uses 5; 20 gives a 4x smaller file at about the same fit")
    ap.add_argument("--n-trees", type=int, default=50)
    args = ap.parse_args(argv)
    quotas = tuple(int(v) for v in args.quotas.split(",")) if args.quotas else None
    root, cache = Path(args.root), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for ds, k in (("bsds", args.bsds_images), ("msrc", args.msrc_images)):
        if k >= 0:
            build_cache(root, cache, ds, k, args.stride, args.preset, args.shard, args.n_shards,
                        args.owt, args.contours, quotas)
    if args.only_cache:
        return 0

    from sklearn.ensemble import RandomForestRegressor

    from bottomup.mcg.ranking import forest_from_sklearn, predict_forest

    rng = np.random.default_rng(args.seed)
    xs, ys, n_img = [], [], {"bsds": 0, "msrc": 0}
    if args.out is None:
        from bottomup.mcg.ranking import ranker_path

        args.out = ranker_path(args.owt, args.preset, args.contours)
    for f in sorted(cache.glob(f"{cache_tag(args.preset, args.owt, args.contours, quotas)}_*.npz")):
        if f.name.endswith(".part.npz"):
            continue
        z = np.load(f)
        x, y, b = z["features"], z["target"], z["best_of_obj"]
        pick = np.unique(np.concatenate([b, rng.choice(len(y), min(args.per_image, len(y)),
                                                            replace=False)]))
        xs.append(x[pick])
        ys.append(y[pick])
        n_img[f.name.split("_")[1]] += 1
    x = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(ys).astype(np.float64)
    t0 = time.perf_counter()
    model = RandomForestRegressor(n_estimators=args.n_trees, max_features=5,
                                  min_samples_leaf=args.min_samples_leaf,
                                  random_state=args.seed, n_jobs=1)
    model.fit(x, y)
    fit_s = time.perf_counter() - t0
    forest = forest_from_sklearn(model)
    diff = np.abs(predict_forest(forest, x[:2000]) - model.predict(x[:2000])).max()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    forest.save(args.out)
    info = {"images": n_img, "n_trees": args.n_trees, "max_features": 5,
            "min_samples_leaf": args.min_samples_leaf, "per_image": args.per_image,
            "seed": args.seed, "preset": args.preset,
            "owt": None if args.contours else args.owt, "contours": args.contours, "quotas": quotas,
            "samples": int(len(y)),
            "fit_seconds": fit_s,
            "oob": None, "max_abs_diff_numpy_vs_sklearn": float(diff),
            "nodes": int(forest.left.size), "target_mean": float(y.mean()),
            "feature_importances": model.feature_importances_.round(4).tolist()}
    print(json.dumps(info, indent=1))
    Path(args.out).with_suffix(".json").write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
