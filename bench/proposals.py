"""Object-proposal quality and speed of SCG on BSDS500 or MSRC (ABO, recall at IoU, as functions of N).

Objects: BSDS human segments (every segment of every annotator, ignoring those under 0.1% of the
image); MSRC labelled segments of the thing classes (void segments are left out of every area).
Baseline side by side at equal counts: the singletons of the same single-scale hierarchy (its
regions from the root downwards, i.e. the top nodes by merge order).

    python bench/proposals.py --dataset msrc --root $BOTTOMUP_DATA/msrc --split val \
        --json out.json [--plot out.png] [--n-images 20] [--preset scg]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: MSRC thing classes (1-based ids, shared/data/README.md)
MSRC_THINGS = (4, 6, 9, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23)
N_GRID = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 20000)


def list_items(dataset: str, root, split: str) -> list[tuple[str, Path]]:
    """``(name, image_path)`` of a split."""
    root = Path(root)
    if dataset == "bsds":
        d = root / "data" / "images" / split
        return [(p.stem, p) for p in sorted(d.glob("*.jpg"))]
    if dataset == "msrc":
        names = (root / f"{split}.txt").read_text().split()
        return [(n, root / "images" / f"{n}.png") for n in names]
    raise ValueError(f"`dataset` must be 'bsds' or 'msrc', got {dataset!r}")


def load_objects(dataset: str, root, split: str, name: str):
    """Ground-truth objects ``(G, H, W)`` bool and the void mask ``(H, W)`` (or None)."""
    root = Path(root)
    if dataset == "bsds":
        from bottomup.io import read_bsds_gt

        gt = read_bsds_gt(root / "data" / "groundTruth" / split / f"{name}.mat")
        masks = []
        for seg in gt.segmentations:
            min_area = 0.001 * seg.size
            for lab in range(int(seg.max()) + 1):
                m = seg == lab
                if m.sum() >= min_area:
                    masks.append(m)
        return np.stack(masks), None
    import scipy.io as sio

    mat = sio.loadmat(root / "groundTruth" / f"{name}_GT.mat")
    seg = mat["newseg"].astype(np.int64)
    labels = mat["newlabels"].ravel().astype(np.int64)
    void = (seg < 1) | (seg > labels.size)
    masks = [seg == i for i in range(1, labels.size + 1) if labels[i - 1] in MSRC_THINGS
             and (seg == i).any()]
    shape = seg.shape
    return (np.stack(masks) if masks else np.zeros((0, *shape), bool)), void


def leaf_overlaps(gt, void, labels, leaf_sets):
    """IoU ``(K, G)`` of leaf-set candidates with GT masks (non-void pixels only)."""
    valid = np.ones(labels.shape, bool) if void is None else ~void
    n_leaves = leaf_sets.shape[1]
    leaf_area = np.bincount(labels[valid], minlength=n_leaves).astype(np.float64)
    table = np.stack([np.bincount(labels[g & valid], minlength=n_leaves) for g in gt]).astype(
        np.float64) if len(gt) else np.zeros((0, n_leaves))
    incf = leaf_sets.astype(np.float64)
    inter = incf @ table.T
    union = (incf @ leaf_area)[:, None] + table.sum(axis=1)[None] - inter
    return inter / np.maximum(union, 1e-12)


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("bsds", "msrc"), required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--json", required=True)
    ap.add_argument("--plot")
    ap.add_argument("--n-images", type=int, default=0, help="first K images only (0: all)")
    ap.add_argument("--preset", default="scg")
    ap.add_argument("-n", type=int, default=2000, help="proposals per image")
    ap.add_argument("--hier-cache", help="folder to save/load hierarchies (then seconds_per_image "
                    "counts only grouping and ranking for cached ones)")
    ap.add_argument("--quotas", help="singletons,pairs,triplets,4-tuples (default: the preset's)")
    ap.add_argument("--theta", type=float, default=0.7, help="MMR weight (1: score order)")
    args = ap.parse_args(argv)

    from bottomup.io import read_image
    from bottomup.mcg import proposals
    from bottomup.mcg.pipeline import hierarchy_for
    from bottomup.metrics.proposals import ProposalParams, ProposalRecall

    quotas = tuple(int(v) for v in args.quotas.split(",")) if args.quotas else None
    params = ProposalParams(n_candidates=N_GRID, iou_thresholds=(0.5, 0.7, 0.85))
    ours, base = ProposalRecall(params), ProposalRecall(params)
    ours_box = ProposalRecall(params)
    items = list_items(args.dataset, args.root, args.split)
    if args.n_images:
        items = items[: args.n_images]
    # warm-up (JIT compile) on the first image, reported apart
    t0 = time.perf_counter()
    proposals(read_image(items[0][1]), n=10, preset=args.preset)
    warmup = time.perf_counter() - t0
    secs, secs_h, counts = [], [], []
    for name, path in items:
        img = read_image(path)
        gt, void = load_objects(args.dataset, args.root, args.split, name)
        t0 = time.perf_counter()
        cached = (Path(args.hier_cache) / f"{args.preset}_{args.dataset}_{name}.npz"
                  if args.hier_cache else None)
        if cached is not None and cached.exists():
            from bottomup.hierarchy import Hierarchy

            h = Hierarchy.load(cached)
        else:
            h = hierarchy_for(img, args.preset)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                h.save(cached)
        t1 = time.perf_counter()
        cands = proposals(img, n=args.n, preset=args.preset, hierarchy=h, theta=args.theta,
                          quotas=quotas)
        t2 = time.perf_counter()
        secs.append(t2 - t0)
        secs_h.append(t1 - t0)
        counts.append(len(cands))
        if len(gt) == 0:
            continue
        ours.update_leaves(gt, cands.leaf_labels, cands.leaf_sets, void=void)
        from bottomup.masks import masks_to_boxes

        ours_box.update_boxes(masks_to_boxes(gt), cands.boxes)
        # baseline: the hierarchy's regions from the root downwards (singletons)
        n_nodes = h.n_nodes
        top = np.arange(n_nodes - 1, max(n_nodes - 1 - args.n, -1), -1)
        from bottomup.mcg import tuples_to_leaf_sets

        t = np.full((top.size, 4), -1, np.int64)
        t[:, 0] = top
        base.update_leaves(gt, h.leaf_labels, tuples_to_leaf_sets(h, t), void=void)
        print(f"{name}: {len(cands)} proposals, {t2 - t0:.2f} s", file=sys.stderr)
    results = []
    for label, metric in ((args.preset, ours), ("hierarchy_singletons", base),
                          (f"{args.preset}_boxes", ours_box)):
        s = metric.compute()
        ns = list(params.n_candidates)
        rec = {"method": label, "n": ns, "abo": s.abo.tolist(),
               "recall": {str(t): s.recall[i].tolist() for i, t in enumerate(params.iou_thresholds)},
               "n_objects": int(s.n_objects)}
        i100, i1000 = ns.index(100), ns.index(1000)
        rec.update({"abo@100": float(s.abo[i100]), "abo@1000": float(s.abo[i1000]),
                    "recall50@1000": float(s.recall[0][i1000]),
                    "recall70@1000": float(s.recall[1][i1000]),
                    "recall70@100": float(s.recall[1][i100])})
        if label == args.preset:
            rec.update({"seconds_per_image": float(np.median(secs)),
                        "seconds_per_image_mean": float(np.mean(secs)),
                        "hierarchy_seconds_per_image": float(np.median(secs_h)),
                        "warmup_seconds": warmup, "mean_candidates": float(np.mean(counts))})
        results.append(rec)
        print(f"{label}: ABO@100 {rec['abo@100']:.3f} ABO@1000 {rec['abo@1000']:.3f} "
              f"R50@1000 {rec['recall50@1000']:.3f} R70@1000 {rec['recall70@1000']:.3f} "
              f"({rec['n_objects']} objects)")
    print(f"seconds per image: median {np.median(secs):.2f} (hierarchy {np.median(secs_h):.2f}), "
          f"warm-up {warmup:.1f} s")
    meta = _meta() | {"dataset": args.dataset, "split": args.split, "n_images": len(items),
                      "preset": args.preset, "theta": args.theta, "quotas": args.quotas,
                      "hier_cache": args.hier_cache, "argv": sys.argv}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"metadata": meta, "results": results}, fh, indent=1)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for rec in results[:2]:
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
