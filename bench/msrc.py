"""Train and evaluate the deep heads (region scoring, mask refinement, fusion) on MSRC-21.

    python bench/msrc.py train  --root $BOTTOMUP_DATA/msrc --work DIR [--out WEIGHTS.pt]
                                [--pool train+val --fusion-from CV_WORK/cv/cv.json]
                                [--heads-from TRAINED.pt]   (re-attach a new selection, no training)
    python bench/msrc.py select --root $BOTTOMUP_DATA/msrc --work DIR --weights WEIGHTS.pt [--pool train]
    python bench/msrc.py eval   --root $BOTTOMUP_DATA/msrc --work DIR --split val --json OUT.json
                                [--weights WEIGHTS.pt] [--crf] [--ablation]
    python bench/msrc.py cv     --root $BOTTOMUP_DATA/msrc --work DIR --folds 5 --pool train+val
                                [--max-images N] [--epochs-scale S] [--crf] [--json OUT.json]
    python bench/msrc.py eval   --work DIR --cv 5           (the figures of a finished cv, or of its
                                                             finished folds, marked partial)

``--root`` is either raw MSRC-v2 (``images/``, ``groundTruth/``, ``train.txt``, ``val.txt``), which
is converted once to the documented layout of :mod:`deep.data` in ``WORK/layout``, or a folder
already in that layout (your own data). ``WORK`` caches backbone taps, proposals and stage
checkpoints, so every step resumes after an interruption. ``train`` trains on ``--pool`` (default
the train split; checkpoints in ``WORK/train/POOL/``). The shipped heads are
``train --pool train+val --fusion-from CV_WORK/cv/cv.json``: trained on every labelled image, with
the fusion and CRF parameters the cross-validation chose (per key, the median of the folds'
fitted choices, :func:`deep.fusion.median_fusion`, :func:`deep.fusion.median_crf`), so no
figure of theirs on val is a held-out figure.

Selection never reads the images it reports on. ``select`` deals the pool (``--pool``, default
train) into ``--folds`` folds (:func:`deep.data.kfold_split`), trains heads on all folds but
``--sel-fold``, and on that fold chooses the instances' NMS threshold and number of refined
candidates by AP^r@0.5 (:func:`deep.fusion.fit_nms`), fits the fusion weights
(:func:`deep.fusion.fit_fusion`, with and without the test-time flip) and then the dense-CRF
parameters (:func:`deep.fusion.fit_crf`), and writes them into the weights file (heads trained
on the whole pool by ``train``); val is never read.
``cv`` is K-fold cross-validation over the pool: for each fold k, the fold after it (k + 1 mod K)
is the selection fold, heads are trained on the other K - 2 folds and the fusion is fitted on the
selection fold, then (unless ``--no-refit``) heads are retrained on all K - 1 training folds, and
fold k is scored with the fitted fusion. Each fold's checkpoints, selection and figures are kept
under ``WORK/cv/fold_k/`` (written atomically, skipped when present); the summary (per-fold
figures, mean and std over folds, pooled semantic figures) goes to ``WORK/cv/cv.json``. Epoch
counts are fixed by the recipe (``--*-epochs`` times ``--epochs-scale``), not selected.
``eval`` reports

    pixel_acc, mean_class_acc, miou, fw_iou (semantic, before any CRF unless --crf),
    apr50, apr70 (SDS AP^r, thing classes), mask_ap (COCO 0.5:0.95), seconds_per_image (the deep
    part, proposals excluded), seconds_proposals

and with ``--ablation`` the same semantic figures for the per-pixel classifier alone, region
scoring without refinement (instances from the raw candidates) and the full pipeline.
"""

from __future__ import annotations

import argparse
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


def _pool(root: Path, work: Path, pool: str):
    """The images of the splits named in ``pool`` (``train``, ``val``, ``train+val``), in order."""
    splits = [p for p in pool.split("+") if p]
    if not splits:
        raise ValueError(f"`--pool` must name splits joined by '+', e.g. train+val, got {pool!r}")
    dss = [_dataset(root, work, sp) for sp in splits]
    return dss[0].subset([n for d in dss for n in d.names])


def _prepare(ds, work: Path, workers: int, preset: str, n: int, owt: str | None = None):
    from deep.training import cache_proposals, cache_taps

    cache_taps(ds, work)
    cache_proposals(ds, work, n=n, preset=preset, workers=workers, owt=owt)


def cv_fusion(path, settings: dict) -> tuple[dict, dict | None]:
    """The fusion and the dense-CRF parameters a finished cross-validation chose
    (:func:`deep.fusion.median_fusion` and :func:`deep.fusion.median_crf` of its folds' choices;
    the CRF's None when it was run without ``--crf``), read from its ``cv.json``; its recipe must
    be the one of ``settings``."""
    from deep.fusion import median_crf, median_fusion

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"--fusion-from must name the cv.json of a finished `cv` (WORK/cv/cv.json), "
                         f"got {str(path)!r}, which does not exist")
    summary = json.loads(path.read_text())
    if "folds" not in summary or "config" not in summary or summary.get("partial"):
        raise SystemExit(f"--fusion-from {path}: expected the summary of a finished cross-validation "
                         f"(keys config, folds), got keys {sorted(summary)}")
    cfg = summary["config"]
    differ = [k for k in ("epochs", "preset", "proposals", "owt") if cfg.get(k) != settings[k]]
    if differ:
        raise SystemExit(f"--fusion-from {path}: the cross-validation used other settings than this "
                         f"training: " + ", ".join(f"{k} {cfg.get(k)!r} there, {settings[k]!r} here"
                                                   for k in differ))
    crfs = [f.get("crf_params") for f in summary["folds"]]
    return (median_fusion([f["fusion"] for f in summary["folds"]]),
            median_crf(crfs) if all(c is not None for c in crfs) else None)


def cmd_train(args) -> int:
    import torch

    from deep.segmenter import DeepSegmenter
    from deep.training import train_heads

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    settings = {"epochs": _epochs(args), "preset": args.preset, "proposals": args.proposals, "owt": args.owt}
    fusion, crf = cv_fusion(args.fusion_from, settings) if args.fusion_from else (None, None)
    ds = _pool(Path(args.root), work, args.pool)
    if args.heads_from:
        return _reuse_heads(args, ds, settings, fusion, crf)
    t0 = time.perf_counter()
    _prepare(ds, work, args.workers, args.preset, args.proposals, args.owt)
    t_cache = time.perf_counter() - t0
    c0 = time.process_time()
    heads = train_heads(ds, work, ckpt_dir=work / "train" / args.pool, **settings["epochs"])
    seg = DeepSegmenter(heads["pixel"], heads["scorer"], heads["refiner"], ds.classes, ds.things,
                        fusion=fusion, preset=args.preset, n_proposals=args.proposals, owt=args.owt,
                        trained_on=ds.names, crf=crf)
    seg.save(args.out)
    info = {"pool": args.pool, "n_images": len(ds), "seconds_cache": t_cache,
            **{f"seconds_{k}": v for k, v in heads["times"].items()},
            "cpu_seconds_training": time.process_time() - c0, "cpu_count": os.cpu_count(),
            "threads": args.threads, "fusion": seg.fusion, "crf": seg.crf,
            "fusion_from": str(args.fusion_from) if args.fusion_from else None, "weights": str(args.out)}
    print(json.dumps(info, indent=1))
    if args.json:
        _write_json(args.json, info)
    return 0


def _reuse_heads(args, ds, settings: dict, fusion: dict | None, crf: dict | None) -> int:
    """``train --heads-from``: the heads of a weights file trained on exactly this pool, with the
    fusion and CRF of ``--fusion-from`` written in (what retraining would give, the training being
    deterministic, without its minutes)."""
    from deep.segmenter import DeepSegmenter

    src = Path(args.heads_from)
    if fusion is None:
        raise SystemExit("--heads-from only re-attaches a selection: give --fusion-from CV_JSON too")
    if not src.is_file():
        raise SystemExit(f"--heads-from must name a weights file, got {str(src)!r}, which does not exist")
    seg = DeepSegmenter.load(src, fusion=fusion, crf=crf)
    if seg.trained_on is None or tuple(seg.trained_on) != tuple(ds.names):
        got = "unknown images" if seg.trained_on is None else f"{len(seg.trained_on)} other images"
        raise SystemExit(f"--heads-from {src}: its heads must be trained on the {len(ds)} images of "
                         f"--pool {args.pool} in their order, got {got}")
    theirs = {"preset": seg.preset, "proposals": seg.n_proposals, "owt": seg.owt}
    differ = [k for k in theirs if theirs[k] != settings[k]]
    if differ:
        raise SystemExit(f"--heads-from {src}: trained with other proposals than this recipe: "
                         + ", ".join(f"{k} {theirs[k]!r} there, {settings[k]!r} here" for k in differ))
    seg.save(args.out)
    info = {"pool": args.pool, "n_images": len(ds), "heads_from": str(src), "fusion": seg.fusion,
            "crf": seg.crf, "fusion_from": str(args.fusion_from), "weights": str(args.out)}
    print(json.dumps(info, indent=1))
    if args.json:
        _write_json(args.json, info)
    return 0


def _setup(args):
    """Dataset (caches filled) and segmenter (with ``--fusion`` overrides) of ``eval``/``select``."""
    import torch

    from deep.segmenter import DeepSegmenter, check_fusion

    fusion = check_fusion(json.loads(args.fusion), name="--fusion") if args.fusion else {}
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    ds = _dataset(Path(args.root), work, args.split)
    _prepare(ds, work, args.workers, args.preset, args.proposals, args.owt)
    seg = DeepSegmenter.load(args.weights)
    seg.fusion.update(fusion)
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


def _evaluate(seg, ds, work, *, crf: bool = False, ablation: bool = False, progress=True) -> dict:
    """The figures of ``eval`` for ``seg`` on ``ds`` (taps and proposals from the caches)."""
    n = len(ds.classes)
    rows, times, crf_rows, base_rows, raw_rows, t_crf, stage_t = [], [], [], [], [], [], []
    for sample, cands, taps, res, dt in _predict_all(seg, ds, work, progress=progress):
        rows.append((sample, res.labels, res.instances))
        times.append(dt)
        stage_t.append(res.timings)
        if ablation:
            base_rows.append((sample, res.pixel_probs.argmax(0).astype(np.uint8), res.instances))
            r2 = seg.predict(sample.image, candidates=cands, taps=taps, fusion={"refine": False})
            raw_rows.append((sample, r2.labels, r2.instances))
        if crf:
            t0 = time.perf_counter()
            lab = seg.crf_labels(res, sample.image)
            t_crf.append(time.perf_counter() - t0)
            crf_rows.append((sample, lab, res.instances))
    out = score_results(ds, rows, n)
    out.update({"n_images": len(ds), "n_training_images": len(seg.seen(ds.names)),
                "seconds_heads_median": float(np.median(times)),
                "seconds_stages_median": {k: float(np.median([t[k] for t in stage_t])) for k in stage_t[0]}})
    if crf:
        c = score_results(ds, crf_rows, n, with_instances=False)
        out["crf"] = {k: c[k] for k in ("pixel_acc", "mean_class_acc", "miou", "fw_iou", "confusion")}
        out["crf"]["seconds_per_image"] = float(np.median(t_crf))
    if ablation:
        keys = ("pixel_acc", "mean_class_acc", "miou", "fw_iou", "apr50", "apr70", "mask_ap")
        b = score_results(ds, base_rows, n, with_instances=False)
        r = score_results(ds, raw_rows, n)
        out["ablation"] = {
            "pixel_classifier": {k: b[k] for k in keys if k in b},
            "region_scoring_no_refinement": {k: r[k] for k in keys},
            "with_mask_refinement": {k: out[k] for k in keys},
        }
    return out


def _write_json(path, obj) -> None:
    from bottomup.io.files import atomic_path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1))


def cmd_eval(args) -> int:
    if args.cv is not None:
        return _print_cv(Path(args.work), args.cv, args.json)
    ds, work, seg = _setup(args)
    seen = seg.seen(ds.names)
    if seen:
        print(f"WARNING: {len(seen)} of the {len(ds)} images of {args.split} are training images of these "
              f"heads (e.g. {seen[0]}): these figures are not held-out figures", file=sys.stderr, flush=True)
    out = _evaluate(seg, ds, work, crf=args.crf, ablation=args.ablation)
    # taps come from the cache here: time the backbone pass apart and add it
    t_backbone = _backbone_seconds(seg, ds)
    out.update({"split": args.split, "seconds_per_image": out["seconds_heads_median"] + t_backbone,
                "seconds_backbone": t_backbone, "weights": args.weights or "shipped", "preset": seg.preset,
                "fusion": seg.fusion})
    if args.crf:
        out["crf"].pop("confusion")
    summary = {k: v for k, v in out.items() if k not in ("per_class_apr50", "confusion")}
    print(json.dumps(summary, indent=1))
    if args.json:
        _write_json(args.json, out)
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


# ---- selection and cross-validation ---------------------------------------------------------------


def _epochs(args) -> dict:
    """Epochs of each head: ``--*-epochs`` times ``--epochs-scale`` (at least 1)."""
    sc = float(args.epochs_scale)
    if not sc > 0:
        raise ValueError(f"`--epochs-scale` must be > 0, got {args.epochs_scale}")
    return {f"{k}_epochs": max(1, round(getattr(args, f"{k}_epochs") * sc))
            for k in ("pixel", "scorer", "refiner")}


def _heads(ds, work: Path, names, ckpt_dir: Path, out: Path, settings: dict, *, backbone=None,
           fusion=None, progress=print):
    """Heads trained on the images ``names`` of ``ds`` (checkpoints in ``ckpt_dir``), saved to
    ``out`` and read back from it, so a resumed run uses exactly the saved (float16) weights."""
    from deep.segmenter import DeepSegmenter
    from deep.training import train_heads

    times = out.with_name(out.stem + "_seconds.json")
    if not out.is_file():
        sub = ds.subset(names)
        c0 = time.process_time()
        h = train_heads(sub, work, ckpt_dir=ckpt_dir, progress=progress, **settings["epochs"])
        h["times"]["cpu_all_stages"] = time.process_time() - c0  # CPU seconds of this process, all threads
        seg = DeepSegmenter(h["pixel"], h["scorer"], h["refiner"], ds.classes, ds.things, fusion=fusion,
                            backbone=backbone, preset=settings["preset"], n_proposals=settings["proposals"],
                            owt=settings["owt"], trained_on=sub.names)
        _write_json(times, h["times"])  # of this run only, when it resumed a checkpoint
        seg.save(out)
    seconds = json.loads(times.read_text()) if times.is_file() else {}
    seg = DeepSegmenter.load(out, backbone=backbone) if backbone is not None else DeepSegmenter.load(out)
    if fusion is not None:
        seg.fusion.update(fusion)
    return seg, seconds


def select_fusion(ds, work: Path, fit_names, sel_names, out_dir: Path, settings: dict, *, backbone=None,
                  progress=print) -> dict:
    """Fit the fusion weights for heads trained on ``fit_names``, on ``sel_names`` only.

    Trains (or resumes) heads on ``fit_names`` (``out_dir/inner/``, ``out_dir/inner_heads.pt``),
    computes their components on the selection images ``sel_names``, chooses the instances' NMS
    threshold among ``settings["nms"]`` by AP^r@0.5 (:func:`deep.fusion.fit_nms`) and fits the
    fusion weights on the instances it keeps (:func:`deep.fusion.fit_fusion`), once per
    combination of the switches' values (``settings["switches"]``, e.g. ``flip``), keeping the
    best objective (ties: the first); writes ``out_dir/selection.json`` and returns its content
    (``fusion`` with the switches and ``nms``, ``figures``, ``tried``, ``switches_tried``,
    ``nms_tried``, the names). No other image of ``ds`` is read.
    """
    import itertools

    from deep.fusion import fit_fusion, fit_nms

    path = out_dir / "selection.json"
    overlap = set(fit_names) & set(sel_names)
    if overlap:
        raise ValueError(f"selection images must not be training images, got {sorted(overlap)[:5]} in both")
    seg, seconds = _heads(ds, work, fit_names, out_dir / "inner", out_dir / "inner_heads.pt", settings,
                          backbone=backbone, progress=progress)
    if path.is_file():
        out = json.loads(path.read_text())
        if "crf" not in out:  # a selection written before the CRF step: add it
            sel = ds.subset(sel_names)
            samples = [sel[i] for i in range(len(sel))]
            comps = _selection_components(seg, samples, sel.names, work, out["fusion"])
            out.update(_select_crf(seg, samples, comps, out["fusion"], settings))
            _write_json(path, out)
        return out
    grid, switches = settings["grid"], settings["switches"]
    t0 = time.perf_counter()
    sel = ds.subset(sel_names)
    samples = [sel[i] for i in range(len(sel))]  # read once, used for every switch value
    targets = [s.labels for s in samples]
    truths = [(*s.thing_instances(ds.things), s.void) for s in samples]
    max_keep = int(seg.fusion["max_instances"])
    counts = settings["n_refine"]
    if len(counts) > 1 and int(seg.fusion["classes_per_candidate"]) != 1:
        raise ValueError("selecting n_refine needs classes_per_candidate 1 (one instance per candidate)")
    # every instance of the most candidates; fit_nms takes the first n and suppresses
    unsuppressed = {"nms": 1.0, "max_instances": 10**9, "n_refine": max(counts)}
    best, switches_tried, nms = None, [], None
    for values in itertools.product(*switches.values()):
        sw = dict(zip(switches, values, strict=True))
        comps = _selection_components(seg, samples, sel.names, work,
                                      {"iou_power": list(grid["iou_power"]), **sw, **unsuppressed})
        if nms is None:  # the instances do not depend on the switches (they act on the pixel term)
            nms = fit_nms([c["instances"] for c in comps], truths, ds.things, len(ds.classes),
                          thresholds=settings["nms"], max_keep=max_keep, n_refine=counts)
        for c in comps:
            c["instances"] = c["instances"].take(slice(nms.n_refine)).suppress(nms.nms, max_keep=max_keep)
        fit = fit_fusion(comps, targets, len(ds.classes), grid=grid,
                         base={**seg.fusion, **sw, "nms": nms.nms, "n_refine": nms.n_refine},
                         method=settings["method"])
        switches_tried.append({**sw, "objective": fit.score, **fit.figures, "fusion": fit.fusion})
        if best is None or fit.score > best[1].score:
            best = (sw, fit, comps)  # its components (instances suppressed) serve the CRF's fit
        comps = None
    sw, fit, comps = best
    out = {"fusion": {**fit.fusion, **sw, "nms": nms.nms, "n_refine": nms.n_refine},
           "figures": {**fit.figures, "apr50": nms.apr50}, "objective": fit.score,
           "method": settings["method"], "n_tried": len(fit.tried), "tried": list(fit.tried),
           "switches_tried": switches_tried, "nms_tried": list(nms.tried), "fit_names": list(fit_names),
           "sel_names": list(sel_names), "seconds_inner_training": seconds,
           "seconds_selection": time.perf_counter() - t0}
    out.update(_select_crf(seg, samples, comps, out["fusion"], settings))
    _write_json(path, out)
    return out


def _selection_components(seg, samples, names, work: Path, fusion: dict) -> list:
    """:meth:`DeepSegmenter.components` of the selection images (taps and proposals from the
    caches), log-probabilities kept as float16: the one precision of every fit on them (64
    images' float32 maps would double the memory of the selection)."""
    from deep.training import load_proposals, load_taps

    comps = []
    for sample, name in zip(samples, names, strict=True):
        comp = seg.components(sample.image, candidates=load_proposals(work, name), taps=load_taps(work, name),
                              fusion=fusion)
        comp["logp"] = comp["logp"].half()
        comps.append(comp)
    return comps


def _select_crf(seg, samples, comps, fusion: dict, settings: dict) -> dict:
    """The dense-CRF parameters fitted (:func:`deep.fusion.fit_crf`, grid ``settings["crf_grid"]``)
    on the selection images ``samples``, fused with the selected ``fusion`` from their components
    ``comps`` (instances already suppressed as ``fusion`` says), so no image is predicted twice."""
    from deep.fusion import fit_crf

    t0 = time.perf_counter()
    probs = [seg.fuse(c, fusion)[1].cpu().numpy().astype(np.float32) for c in comps]
    fit = fit_crf(probs, [s.image for s in samples], [s.labels for s in samples],
                  len(seg.classes), grid=settings["crf_grid"], method=settings["method"],
                  instances=[c["instances"] for c in comps], paste=fusion.get("paste", seg.fusion["paste"]))
    return {"crf": fit.crf, "crf_figures": fit.figures, "crf_before": fit.before,
            "crf_tried": list(fit.tried), "seconds_crf_selection": time.perf_counter() - t0}


def _settings(args) -> dict:
    from deep.fusion import DEFAULT_CRF_GRID, DEFAULT_GRID, DEFAULT_N_REFINE, DEFAULT_NMS, DEFAULT_SWITCHES

    grid = {k: list(v) for k, v in DEFAULT_GRID.items()}
    switches = {k: list(v) for k, v in DEFAULT_SWITCHES.items()}
    nms, n_refine = list(DEFAULT_NMS), list(DEFAULT_N_REFINE)
    if args.grid:
        from deep.segmenter import FUSE_KEYS, check_fusion

        given = check_fusion(json.loads(args.grid), name="--grid")
        bad = [k for k in given if k not in FUSE_KEYS and k not in switches and k not in ("nms", "n_refine")]
        if bad:
            raise ValueError(f"`--grid` key {bad[0]!r} is not a weight of the fusion layer; the fitted keys "
                             f"are {list(FUSE_KEYS)}, the switches {list(switches)}, 'nms' and 'n_refine'")
        grid.update({k: v for k, v in given.items() if k in FUSE_KEYS})
        switches.update({k: v for k, v in given.items() if k in switches})
        nms = list(given.get("nms", nms))
        if not nms or not all(isinstance(t, (int, float)) and 0 <= t <= 1 for t in nms):
            raise ValueError(f"`--grid` 'nms' must list thresholds in [0, 1], got {nms}")
        n_refine = list(given.get("n_refine", n_refine))
        if not n_refine or not all(isinstance(n, int) and n >= 1 for n in n_refine):
            raise ValueError(f"`--grid` 'n_refine' must list counts >= 1, got {n_refine}")
    return {"epochs": _epochs(args), "preset": args.preset, "proposals": args.proposals, "owt": args.owt,
            "grid": grid, "switches": switches, "nms": nms, "n_refine": n_refine,
            "crf_grid": {k: list(v) for k, v in DEFAULT_CRF_GRID.items()}, "method": args.method,
            "seed": args.seed}


def _pool_names(ds, max_images, seed: int):
    """The pool, or a seeded sample of ``max_images`` of it (in pool order)."""
    if max_images is None or max_images >= len(ds):
        return ds
    if max_images < 3:
        raise ValueError(f"`--max-images` must be at least 3, got {max_images}")
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=max_images, replace=False))
    return ds.subset([ds.names[i] for i in idx])


def _folds(ds, n_folds: int, seed: int):
    from deep.data import kfold_split

    return kfold_split(ds.names, n_folds, classes=ds.present_classes(), rng=seed)


def cmd_select(args) -> int:
    """Fit the fusion weights on one fold of the pool, heads trained on the others; write them."""
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    settings = _settings(args)
    ds = _pool_names(_pool(Path(args.root), work, args.pool), args.max_images, args.seed)
    if args.weights is None or not Path(args.weights).is_file():
        raise SystemExit(f"--weights must name heads trained on the pool ({args.pool}) by `train`, got "
                         f"{args.weights!r}; the fitted fusion is written into that file")
    if not 0 <= args.sel_fold < args.folds:
        raise SystemExit(f"--sel-fold must be in 0..{args.folds - 1}, got {args.sel_fold}")
    _prepare(ds, work, args.workers, args.preset, args.proposals, args.owt)
    folds = _folds(ds, args.folds, args.seed)
    sel = folds[args.sel_fold]
    fit = [n for j, f in enumerate(folds) if j != args.sel_fold for n in f]
    out_dir = work / "select" / f"{args.pool}_k{args.folds}_f{args.sel_fold}_s{args.seed}_n{len(ds)}"
    res = select_fusion(ds, work, fit, sel, out_dir, settings)
    from deep.segmenter import DeepSegmenter

    seg = DeepSegmenter.load(args.weights, crf=res["crf"])
    seg.fusion.update(res["fusion"])
    seg.save(args.weights)
    print(f"selected on fold {args.sel_fold} of {args.folds} of {args.pool} ({len(sel)} images), with heads "
          f"trained on the other {len(fit)} images of {args.pool}; no image outside {args.pool} was read")
    print("selected", json.dumps(res["fusion"]), "crf", json.dumps(res["crf"]),
          "figures on the selection fold", json.dumps(res["figures"]), "after the CRF",
          json.dumps(res["crf_figures"]))
    if args.json:
        _write_json(args.json, res)
    return 0


FIGURES = ("pixel_acc", "mean_class_acc", "miou", "fw_iou", "apr50", "apr70", "mask_ap")
CRF_FIGURES = ("pixel_acc", "mean_class_acc", "miou", "fw_iou")


def cv_fold(ds, work: Path, folds, k: int, settings: dict, *, refit: bool = True, crf: bool = False,
            backbone=None, progress=print) -> dict:
    """One fold of the cross-validation: select on fold k+1, train, score fold k (resumable)."""
    n_folds = len(folds)
    if n_folds < 3:
        raise ValueError(f"cross-validation needs at least 3 folds (test, selection, training), "
                         f"got {n_folds}")
    fdir = work / "cv" / f"fold_{k}"
    path = fdir / "result.json"
    done = json.loads(path.read_text()) if path.is_file() else None
    if done is not None and (not crf or "crf_params" in done):
        return done
    test, sel = folds[k], folds[(k + 1) % n_folds]
    fit = [n for j, f in enumerate(folds) if j not in (k, (k + 1) % n_folds) for n in f]
    chosen = select_fusion(ds, work, fit, sel, fdir, settings, backbone=backbone, progress=progress)
    if refit:
        seg, seconds = _heads(ds, work, fit + sel, fdir / "final", fdir / "heads.pt", settings,
                              backbone=backbone, fusion=chosen["fusion"], progress=progress)
    else:  # the selection step's heads, trained on the K - 2 folds
        seg, seconds = _heads(ds, work, fit, fdir / "inner", fdir / "inner_heads.pt", settings,
                              backbone=backbone, fusion=chosen["fusion"], progress=progress)
    seg.crf = chosen["crf"]
    if seg.seen(test):
        raise RuntimeError(f"fold {k}: the heads were trained on test images {seg.seen(test)[:5]}")
    t0 = time.perf_counter()
    figs = _evaluate(seg, ds.subset(test), work, crf=crf, progress=False)
    out = {"fold": k, "n_folds": n_folds, "refit": refit, "n_train": len(fit) + (len(sel) if refit else 0),
           "n_selection": len(sel), "n_test": len(test), "test_names": list(test),
           "fusion": chosen["fusion"], "selection_figures": chosen["figures"],
           **{key: figs[key] for key in FIGURES}, "per_class_apr50": figs["per_class_apr50"],
           "confusion": figs["confusion"], "seconds_heads_median": figs["seconds_heads_median"],
           "seconds_training": seconds,
           "seconds_inner_training": chosen.get("seconds_inner_training", {}),
           "seconds_selection": chosen.get("seconds_selection"), "seconds_eval": time.perf_counter() - t0}
    if crf:
        out["crf"] = figs["crf"]
        out["crf_params"] = dict(seg.crf)
    _write_json(path, out)
    return out


def cv_summary(results, n_classes: int) -> dict:
    """Per-fold figures, their mean and std (ddof=1) over folds, and the pooled semantic figures."""
    from bottomup.metrics.semantic import semantic_scores
    from deep.fusion import median_crf, median_fusion

    def stats(rows, keys):
        return {key: {"mean": float(np.mean([r[key] for r in rows])),
                      "std": float(np.std([r[key] for r in rows], ddof=1 if len(rows) > 1 else 0))}
                for key in keys}

    def pooled(confs):
        sc = semantic_scores(np.sum([np.asarray(c, np.int64) for c in confs], 0))
        return {"pixel_acc": float(sc.pixel_accuracy), "mean_class_acc": float(sc.mean_accuracy),
                "miou": float(sc.mean_iou), "fw_iou": float(sc.fw_iou)}

    out = {"n_folds": len(results),
           "folds": [{key: r[key] for key in ("fold", "n_train", "n_selection", "n_test", "fusion",
                                               *FIGURES, "seconds_training", "seconds_inner_training",
                                               "seconds_selection", "seconds_eval")} | (
                         {"crf": {key: r["crf"][key] for key in CRF_FIGURES}, "crf_params": r["crf_params"]}
                         if "crf_params" in r else {})
                     for r in results],
           "mean_std": stats(results, FIGURES),
           "fusion": median_fusion([r["fusion"] for r in results]),
           "pooled": pooled([r["confusion"] for r in results])}
    if all("crf_params" in r for r in results):
        out["crf"] = {"mean_std": stats([r["crf"] for r in results], CRF_FIGURES),
                      "pooled": pooled([r["crf"]["confusion"] for r in results]),
                      "params": median_crf([r["crf_params"] for r in results])}
    return out


def _table(summary) -> str:
    lines = ["fold  n_test  " + "  ".join(f"{k:>14}" for k in FIGURES)]
    for r in summary["folds"]:
        lines.append(f"{r['fold']:>4}  {r['n_test']:>6}  " + "  ".join(f"{r[k]:>14.3f}" for k in FIGURES))
    ms = summary["mean_std"]
    lines.append("mean+-std    " + "  ".join(f"{ms[k]['mean']:>7.3f}+-{ms[k]['std']:.3f}" for k in FIGURES))
    lines.append("pooled       " + "  ".join(f"{summary['pooled'][k]:>14.3f}" for k in CRF_FIGURES))
    if "crf" in summary:
        c = summary["crf"]["mean_std"]
        lines.append("crf mean+-std " + "  ".join(f"{k} {c[k]['mean']:.3f}+-{c[k]['std']:.3f}"
                                                  for k in CRF_FIGURES))
    return "\n".join(lines)


def cmd_cv(args) -> int:
    """K-fold cross-validation of the whole recipe (training, fusion selection) over a pool."""
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    t_start = time.perf_counter()
    settings = _settings(args)
    ds = _pool_names(_pool(Path(args.root), work, args.pool), args.max_images, args.seed)
    config = {"pool": args.pool, "n_images": len(ds), "max_images": args.max_images, "folds": args.folds,
              "refit": not args.no_refit, **settings}
    cfg_path = work / "cv" / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if old["config"] != json.loads(json.dumps(config)):
            diff = sorted(k for k in config if old["config"].get(k) != json.loads(json.dumps(config))[k])
            raise SystemExit(f"{cfg_path} holds a cross-validation with other settings ({', '.join(diff)}); "
                             f"use another --work, or delete {work / 'cv'} to start over")
        folds = old["folds"]
    else:
        folds = _folds(ds, args.folds, args.seed)
        _write_json(cfg_path, {"config": config, "folds": folds})
    t0 = time.perf_counter()
    _prepare(ds, work, args.workers, args.preset, args.proposals, args.owt)
    t_cache = time.perf_counter() - t0
    todo = range(args.folds) if args.fold is None else [args.fold]
    results = []
    for k in todo:
        r = cv_fold(ds, work, folds, k, settings, refit=not args.no_refit, crf=args.crf)
        results.append(r)
        print(f"fold {k}: " + " ".join(f"{key} {r[key]:.3f}" for key in FIGURES), flush=True)
    if args.fold is not None:
        return 0
    summary = {"config": config, **cv_summary(results, len(ds.classes)), "seconds_cache": t_cache,
               "seconds_this_run": time.perf_counter() - t_start, "cpu_seconds_this_run": time.process_time(),
               "cpu_count": os.cpu_count(), "threads": args.threads}
    _write_json(work / "cv" / "cv.json", summary)
    print(_table(summary))
    if args.json:
        _write_json(args.json, summary)
    return 0


def _print_cv(work: Path, n_folds: int, json_out=None) -> int:
    """Print the figures of a finished cross-validation (``cv.json``), or of the folds finished so
    far of one still running or interrupted (``config.json`` and ``fold_k/result.json``), marked
    as partial."""
    path = work / "cv" / "cv.json"
    cfg_path = work / "cv" / "config.json"
    if path.is_file():
        summary = json.loads(path.read_text())
        if summary["n_folds"] != n_folds:
            raise SystemExit(f"{path} holds a {summary['n_folds']}-fold cross-validation, not --cv {n_folds}")
        head = ""
    else:
        done = sorted(work.glob("cv/fold_*/result.json"))
        if not cfg_path.is_file() or not done:
            raise SystemExit(f"{path} not found and no fold finished: run `python bench/msrc.py cv "
                             f"--work {work} --folds {n_folds}` first")
        cfg = json.loads(cfg_path.read_text())["config"]
        if cfg["folds"] != n_folds:
            raise SystemExit(f"{cfg_path} holds a {cfg['folds']}-fold cross-validation, not --cv {n_folds}")
        results = sorted((json.loads(p.read_text()) for p in done), key=lambda r: r["fold"])
        summary = {"config": cfg, **cv_summary(results, 0), "partial": True}
        head = f"PARTIAL: folds {[r['fold'] for r in results]} of {n_folds} finished; "
    cfg = summary["config"]
    print(f"{head}{n_folds}-fold cross-validation over {cfg['pool']} ({cfg['n_images']} images; each fold's "
          f"test images unseen by its training and selection), before any CRF:")
    print(_table(summary))
    if json_out:
        _write_json(json_out, summary)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "eval", "select", "cv"):
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
        if name in ("train", "select", "cv"):
            q.add_argument("--pixel-epochs", type=int, default=12)
            q.add_argument("--scorer-epochs", type=int, default=30)
            q.add_argument("--refiner-epochs", type=int, default=8)
            q.add_argument("--epochs-scale", type=float, default=1.0, help="multiplies every --*-epochs")
        if name == "train":
            q.add_argument("--pool", default="train",
                           help="splits the heads are trained on, joined by '+' (shipped heads: train+val)")
            q.add_argument("--fusion-from", metavar="CV_JSON",
                           help="write the fusion a finished `cv` chose (per weight, the median of its "
                                "folds' choices) into the weights; its recipe must match this one")
            q.add_argument("--heads-from", metavar="WEIGHTS",
                           help="with --fusion-from: skip the training, take the heads of WEIGHTS "
                                "(trained on exactly --pool by this recipe) and write them with the "
                                "cross-validation's fusion and CRF to --out")
        if name in ("select", "cv"):
            q.add_argument("--pool", default="train" if name == "select" else "train+val",
                           help="splits dealt into folds, joined by '+'")
            q.add_argument("--folds", type=int, default=5)
            q.add_argument("--seed", type=int, default=0, help="of the folds and of --max-images")
            q.add_argument("--max-images", type=int, help="a seeded sample of the pool (smoke runs)")
            q.add_argument("--method", choices=("coordinate", "grid"), default="coordinate",
                           help="fusion fitting: coordinate ascent or the whole grid")
            q.add_argument("--grid", help="JSON {key: [values]} overriding deep.fusion.DEFAULT_GRID, "
                                          "DEFAULT_SWITCHES and DEFAULT_NMS ('nms'), e.g. "
                                          "'{\"flip\": [false], \"nms\": [0.5]}'")
        if name == "select":
            q.add_argument("--sel-fold", type=int, default=0, help="the fold the fusion is fitted on")
        if name == "cv":
            q.add_argument("--fold", type=int, help="run this fold only (default: all, then the summary)")
            q.add_argument("--no-refit", action="store_true",
                           help="score each fold with the heads of the selection step (trained on K - 2 "
                                "folds) instead of heads retrained on all K - 1 training folds")
            q.add_argument("--crf", action="store_true")
        if name in ("eval", "select"):
            q.add_argument("--weights", default=None)
        if name == "eval":
            q.add_argument("--split", default="val")
            q.add_argument("--fusion", help='JSON overrides of the fusion weights, e.g. \'{"flip": true}\'')
            q.add_argument("--crf", action="store_true")
            q.add_argument("--ablation", action="store_true")
            q.add_argument("--cv", type=int, metavar="K",
                           help="print the per-fold and mean figures of `cv --folds K` in --work (cv.json)")
    args = p.parse_args(argv)
    return {"train": cmd_train, "eval": cmd_eval, "select": cmd_select, "cv": cmd_cv}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
