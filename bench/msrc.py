"""Train and evaluate the deep heads (region scoring, mask refinement, fusion) on MSRC-21.

    python bench/msrc.py train  --root $BOTTOMUP_DATA/msrc --work DIR [--out WEIGHTS.pt]
    python bench/msrc.py select --root $BOTTOMUP_DATA/msrc --work DIR --weights WEIGHTS.pt [--split val]
    python bench/msrc.py eval   --root $BOTTOMUP_DATA/msrc --work DIR --split val --json OUT.json
                                [--weights WEIGHTS.pt] [--crf] [--ablation]

``--root`` is either raw MSRC-v2 (``images/``, ``groundTruth/``, ``train.txt``, ``val.txt``), which
is converted once to the documented layout of :mod:`deep.data` in ``WORK/layout``, or a folder
already in that layout (your own data). ``WORK`` caches backbone taps, proposals and stage
checkpoints, so every step resumes after an interruption. ``train`` uses the train split only;
``select`` grid-searches the fusion weights on a split (val: "tune on train, select on val") and
writes them into the weights file; ``eval`` reports

    pixel_acc, mean_class_acc, miou, fw_iou (semantic, before any CRF unless --crf),
    apr50, apr70 (SDS AP^r, thing classes), mask_ap (COCO 0.5:0.95), seconds_per_image (the deep
    part, proposals excluded), seconds_proposals

and with ``--ablation`` the same semantic figures for the per-pixel classifier alone, region
scoring without refinement (instances from the raw candidates) and the full pipeline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from deep.data import score_results


def _dataset(root: Path, work: Path, split: str):
    from deep.data import SegmentationDataset, msrc_to_layout

    if (root / "groundTruth").is_dir():
        msrc_to_layout(root, work / "layout")
        return SegmentationDataset(work / "layout", split)
    return SegmentationDataset(root, split)


def _prepare(ds, work: Path, workers: int, preset: str, n: int, owt: str | None = None):
    from deep.training import cache_proposals, cache_taps

    cache_taps(ds, work)
    cache_proposals(ds, work, n=n, preset=preset, workers=workers, owt=owt)


def cmd_train(args) -> int:
    import torch

    from deep.segmenter import DeepSegmenter
    from deep.training import train_heads

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    ds = _dataset(Path(args.root), work, "train")
    t0 = time.perf_counter()
    _prepare(ds, work, args.workers, args.preset, args.proposals, args.owt)
    t_cache = time.perf_counter() - t0
    heads = train_heads(ds, work, pixel_epochs=args.pixel_epochs, scorer_epochs=args.scorer_epochs,
                        refiner_epochs=args.refiner_epochs)
    seg = DeepSegmenter(heads["pixel"], heads["scorer"], heads["refiner"], ds.classes, ds.things,
                        preset=args.preset, n_proposals=args.proposals, owt=args.owt)
    seg.save(args.out)
    info = {"seconds_cache": t_cache, **{f"seconds_{k}": v for k, v in heads["times"].items()},
            "weights": str(args.out)}
    print(json.dumps(info, indent=1))
    return 0


def _setup(args):
    """Dataset (caches filled) and segmenter (with ``--fusion`` overrides) of ``eval``/``select``."""
    import torch

    from deep.segmenter import DeepSegmenter

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    ds = _dataset(Path(args.root), work, args.split)
    _prepare(ds, work, args.workers, args.preset, args.proposals, args.owt)
    seg = DeepSegmenter.load(args.weights)
    if args.fusion:
        seg.fusion.update(json.loads(args.fusion))
    return ds, work, seg


def _inputs(ds, work):
    """``(sample, candidates, taps)`` of every image, from the caches."""
    from deep.training import load_proposals, load_taps

    for i, name in enumerate(ds.names):
        yield ds[i], load_proposals(work, name), load_taps(work, name)


def _predict_all(seg, ds, work, fusion=None, progress=True):
    for i, (sample, cands, taps) in enumerate(_inputs(ds, work)):
        t0 = time.perf_counter()
        res = seg.predict(sample.image, candidates=cands, taps=taps, fusion=fusion)
        dt = time.perf_counter() - t0
        if progress and i % 10 == 0:
            print(f"{i + 1}/{len(ds)} {sample.name} {dt:.2f}s", flush=True)
        yield sample, cands, taps, res, dt


def cmd_eval(args) -> int:
    ds, work, seg = _setup(args)
    n = len(ds.classes)
    rows, times, crf_rows, base_rows, raw_rows, t_crf, stage_t = [], [], [], [], [], [], []
    for sample, cands, taps, res, dt in _predict_all(seg, ds, work):
        rows.append((sample, res.labels, res.instances))
        times.append(dt)
        stage_t.append(res.timings)
        if args.ablation:
            base_rows.append((sample, res.pixel_probs.argmax(0).astype(np.uint8), res.instances))
            r2 = seg.predict(sample.image, candidates=cands, taps=taps, fusion={"refine": False})
            raw_rows.append((sample, r2.labels, r2.instances))
        if args.crf:
            from deep.crf import dense_crf

            t0 = time.perf_counter()
            q = dense_crf(-np.log(np.clip(res.probs, 1e-8, 1.0)), sample.image, n_iter=5)
            t_crf.append(time.perf_counter() - t0)
            crf_rows.append((sample, q.argmax(0).astype(np.uint8), res.instances))
    out = score_results(ds, rows, n)
    # taps come from the cache here: time the backbone pass apart and add it
    t_backbone = _backbone_seconds(seg, ds)
    out.update({"split": args.split, "n_images": len(ds),
                "seconds_per_image": float(np.median(times)) + t_backbone,
                "seconds_backbone": t_backbone,
                "seconds_heads_median": float(np.median(times)),
                "seconds_stages_median": {k: float(np.median([t[k] for t in stage_t])) for k in stage_t[0]},
                "weights": args.weights or "shipped", "preset": seg.preset, "fusion": seg.fusion})
    if args.crf:
        c = score_results(ds, crf_rows, n, with_instances=False)
        out["crf"] = {k: c[k] for k in ("pixel_acc", "mean_class_acc", "miou", "fw_iou")}
        out["crf"]["seconds_per_image"] = float(np.median(t_crf))
    if args.ablation:
        keys = ("pixel_acc", "mean_class_acc", "miou", "fw_iou", "apr50", "apr70", "mask_ap")
        b = score_results(ds, base_rows, n, with_instances=False)
        r = score_results(ds, raw_rows, n)
        out["ablation"] = {
            "pixel_classifier": {k: b[k] for k in keys if k in b},
            "region_scoring_no_refinement": {k: r[k] for k in keys},
            "with_mask_refinement": {k: out[k] for k in keys},
        }
    summary = {k: v for k, v in out.items() if k not in ("per_class_apr50", "confusion")}
    print(json.dumps(summary, indent=1))
    if args.json:
        from bottomup.io.files import atomic_path

        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps(out, indent=1))
    return 0


def _backbone_seconds(seg, ds, repeats: int = 5) -> float:
    """Median time of the backbone pass (taps) on the first image, after a warm-up."""
    img = ds[0].image
    seg.taps(img)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        seg.taps(img)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def cmd_select(args) -> int:
    """Grid search of the fusion weights on a split; writes the best into the weights file."""
    ds, work, seg = _setup(args)
    n = len(ds.classes)
    grid = {"pixel": [1.0], "leaf": [0.0, 0.5, 1.0], "region": [0.0, 0.5, 1.0, 2.0],
            "paste": [0.3, 0.5, 0.7, 0.9, 2.0], "iou_power": [1.0, 2.0, 4.0]}
    comps = []
    for sample, cands, taps in _inputs(ds, work):
        comp = seg.components(sample.image, candidates=cands, taps=taps,
                              fusion={"iou_power": grid["iou_power"]})
        comp["logp"] = comp["logp"].half()
        comps.append((sample, comp))
    best, tried = None, []
    keys = list(grid)
    for vals in itertools.product(*(grid[k] for k in keys)):
        fz = dict(zip(keys, vals, strict=True))
        rows = [(sample, seg.fuse(comp, fz)[0], comp["instances"]) for sample, comp in comps]
        s = score_results(ds, rows, n, with_instances=False)
        key = s["miou"] + s["pixel_acc"] + s["mean_class_acc"]
        tried.append({**fz, **{k: s[k] for k in ("pixel_acc", "mean_class_acc", "miou")}})
        print(json.dumps(tried[-1]), flush=True)
        if best is None or key > best[0]:
            best = (key, fz)
    seg.fusion.update(best[1])
    seg.save(args.weights)
    print("selected", json.dumps(best[1]))
    if args.json:
        Path(args.json).write_text(json.dumps({"selected": best[1], "tried": tried}, indent=1))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "eval", "select"):
        q = sub.add_parser(name)
        q.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "msrc"))
        q.add_argument("--work", required=True, help="cache and checkpoint folder (resumable)")
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--workers", type=int, default=2, help="processes for the proposals")
        q.add_argument("--preset", default="scg")
        q.add_argument("--proposals", type=int, default=1000)
        q.add_argument("--owt", default="plain",
                       help="hierarchy of the proposals (mcg.proposals owt; the shipped heads: plain)")
        q.add_argument("--json")
        if name == "train":
            q.add_argument("--out", default=os.path.join("deep", "weights", "heads_msrc21.pt"))
            q.add_argument("--pixel-epochs", type=int, default=12)
            q.add_argument("--scorer-epochs", type=int, default=30)
            q.add_argument("--refiner-epochs", type=int, default=8)
        else:
            q.add_argument("--weights", default=None)
            q.add_argument("--split", default="val")
        if name != "train":
            q.add_argument("--fusion", help='JSON overrides of the fusion weights, e.g. \'{"flip": true}\'')
        if name == "eval":
            q.add_argument("--crf", action="store_true")
            q.add_argument("--ablation", action="store_true")
    args = p.parse_args(argv)
    return {"train": cmd_train, "eval": cmd_eval, "select": cmd_select}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
