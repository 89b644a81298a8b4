"""Train SCG's candidate ranker (a random forest, as MCG's) on BSDS500 train and MSRC train.

For each training image: gPb ``fast`` hierarchy -> candidate pool (``bottomup.mcg.candidate_pool``)
-> 17 features per candidate; target = best IoU of the candidate with a ground-truth object
(BSDS human segments >= 0.1% of the image; MSRC thing segments, void pixels left out). Samples per
image: the best candidate of every object plus ``--per-image`` random others. The forest
(scikit-learn ``RandomForestRegressor``: 50 trees and max_features 5 as MCG's regRF defaults;
min_samples_leaf 20 rather than 5 for a smaller file) is written as arrays to
``bottomup/mcg/data/scg_ranker.npz`` (``--owt plain``) or ``scg_ranker_steepest.npz``
(``--owt steepest``: hierarchies of ``segment(..., owt="steepest")``).

Per-image pools are cached in ``--cache`` (files ``{preset}-{owt}_{dataset}_{name}-{key}.npz``, the
key covering everything a pool depends on: ``pool_key``) so refits are cheap; the fit reads the
pools of the images this run names (every shard's), never stale ones.

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
from bottomup.mcg.cache import hierarchy_key
from bottomup.metrics.proposals import overlaps_leaves


def setup(preset: str, owt, contours):
    """``(method, contour source)`` of this script's ``--preset``, ``--owt`` and ``--contours``."""
    from bottomup.contours import get_source
    from bottomup.mcg.propose import legacy_preset

    method, source = legacy_preset(preset, None if contours else owt)
    return method, (get_source(contours) if contours else source)


def pool_file(cache: Path, dataset: str, name: str, tag: str, key: str) -> Path:
    return cache / f"{tag}_{dataset}_{name}-{key}.npz"


def cache_tag(preset: str, owt: str, contours, quotas=None) -> str:
    """Readable file tag of a kind of pool: ``{preset}-{owt or 'learned-arcs'}[-q{s}-{p}-{t}-{q}]``.

    The tag only names the files; what makes a pool reusable is its key (:func:`pool_key`).
    """
    tag = f"{preset}-{'learned-arcs' if contours else owt}"
    return tag if quotas is None else tag + "-q" + "-".join(map(str, quotas))


def pool_key(image_path, gt_path, preset: str, owt, contours, quotas) -> str:
    """Cache key of one image's pool: everything the hierarchy depends on
    (``bottomup.mcg.cache.hierarchy_key``: the source's spec and arcs, image, shipped contour net
    and arc scorer, code) plus the quotas, the leaf limit and the ground-truth file (the targets)."""
    from bottomup.mcg.grouping import SCG_QUOTAS
    from bottomup.mcg.propose import MAX_LEAVES

    q = SCG_QUOTAS if quotas is None else quotas
    method, source = setup(preset, owt, contours)
    return hierarchy_key(image_path, method, source,
                         extra={"stage": "ranker-pool", "quotas": list(q), "max_leaves": MAX_LEAVES},
                         files=[gt_path])


def _gt_path(sub: Path, dataset: str, name: str) -> Path:
    if dataset == "bsds":
        return sub / "data" / "groundTruth" / "train" / f"{name}.mat"
    return sub / "groundTruth" / f"{name}_GT.mat"


def build_cache(root: Path, cache: Path, dataset: str, n_images: int, stride: int, preset: str,
                shard: int = 0, n_shards: int = 1, owt: str = "plain", contours=None, quotas=None):
    from bottomup.io import read_image
    from bottomup.mcg.grouping import SCG_QUOTAS, coarsen_leaves
    from bottomup.mcg.propose import MAX_LEAVES, candidate_pool, hierarchy_for

    sub = root / ("bsds500" if dataset == "bsds" else "msrc")
    items = split_images(dataset, sub, "train")[::stride]
    if n_images:
        items = items[:n_images]
    items = items[shard::n_shards]
    files = []
    for name, path in items:
        key = pool_key(path, _gt_path(sub, dataset, name), preset, owt, contours, quotas)
        out = pool_file(cache, dataset, name, cache_tag(preset, owt, contours, quotas), key)
        files.append(out)
        if out.exists():
            continue
        t0 = time.perf_counter()
        img = read_image(path)
        gt, void = proposal_objects(dataset, sub, "train", name)
        # as proposals() does: the multiscale hierarchy is first cut to MAX_LEAVES regions
        h = coarsen_leaves(hierarchy_for(img, *setup(preset, owt, contours)), MAX_LEAVES)
        pool = candidate_pool(h, SCG_QUOTAS if quotas is None else quotas)
        iou = overlaps_leaves(gt, h.leaf_labels, pool.leaf_sets, void=void)
        best = iou.max(axis=1) if iou.shape[1] else np.zeros(iou.shape[0])
        best_of_obj = iou.argmax(axis=0) if iou.shape[1] else np.zeros(0, np.int64)
        tmp = out.with_suffix(".part.npz")
        np.savez(tmp, features=pool.features.astype(np.float32), target=best.astype(np.float32),
                 best_of_obj=best_of_obj.astype(np.int64))
        tmp.rename(out)
        print(f"{dataset} {name}: {pool.features.shape[0]} candidates, {len(gt)} objects, "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    return files


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
    ap.add_argument("--shard", type=int, default=0, help="with --only-cache: build this shard of the pools")
    ap.add_argument("--n-shards", type=int, default=1)
    ap.add_argument("--only-cache", action="store_true")
    ap.add_argument("--out", help="default: bottomup.mcg.ranking.ranker_path(method, source.ranker)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-samples-leaf", type=int, default=20,
                    help="MCG's regRF uses 5; 20 gives a 4x smaller file at about the same fit")
    ap.add_argument("--n-trees", type=int, default=50)
    args = ap.parse_args(argv)
    quotas = tuple(int(v) for v in args.quotas.split(",")) if args.quotas else None
    root, cache = Path(args.root), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    # --shard splits the pool building between --only-cache runs; the fit reads every image's
    # pool (building any that is missing), never files left from other settings
    shard, n_shards = (args.shard, args.n_shards) if args.only_cache else (0, 1)
    pools = {}
    for ds, k in (("bsds", args.bsds_images), ("msrc", args.msrc_images)):
        if k >= 0:
            pools[ds] = build_cache(root, cache, ds, k, args.stride, args.preset, shard, n_shards,
                                    args.owt, args.contours, quotas)
    if args.only_cache:
        return 0

    from sklearn.ensemble import RandomForestRegressor

    from bottomup.mcg.ranking import forest_from_sklearn, predict_forest

    rng = np.random.default_rng(args.seed)
    xs, ys, n_img = [], [], {"bsds": 0, "msrc": 0}
    if args.out is None:
        from bottomup.mcg.ranking import ranker_path

        method, source = setup(args.preset, args.owt, args.contours)
        args.out = ranker_path(method, source.ranker)
    for ds, f in ((ds, f) for ds, fs in pools.items() for f in fs):
        z = np.load(f)
        x, y, b = z["features"], z["target"], z["best_of_obj"]
        pick = np.unique(np.concatenate([b, rng.choice(len(y), min(args.per_image, len(y)),
                                                            replace=False)]))
        xs.append(x[pick])
        ys.append(y[pick])
        n_img[ds] += 1
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
