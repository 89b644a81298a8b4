"""Train and evaluate Mask R-CNN (deep.models.MaskRCNN) on a dataset in the deep.data layout.

    python bench/maskrcnn.py train --root $BOTTOMUP_DATA/msrc --split train [--work out/maskrcnn]
                                   [--iterations 4000] [--rois rpn|external] [--mask-prior]
                                   [--max-minutes M] [--json OUT.json]
    python bench/maskrcnn.py eval  --root $BOTTOMUP_DATA/msrc --split val [--work out/maskrcnn]
                                   [--limit N] --json OUT.json
    python bench/maskrcnn.py compare --root $BOTTOMUP_DATA/msrc --split val [--work out/maskrcnn]
                                   [--model heads] [--model NAME=CKPT ...] --json OUT.json
    python bench/maskrcnn.py ship [--work out/maskrcnn] --out deep/weights/maskrcnn_msrc21.pt

``--root`` is raw MSRC-v2 (converted once to the layout of :mod:`deep.data` in ``WORK/layout``, as
``bench/msrc.py`` does) or a folder already in the layout. ``train`` checkpoints
``WORK/maskrcnn.ckpt`` atomically every ``--checkpoint-every`` iterations; running it again
continues (also to a larger ``--iterations``); ``--max-minutes`` stops cleanly with a checkpoint.
It runs on CUDA when present (``--device`` to force one). ``--rois external`` trains the same heads
on SCG candidates (cached in ``WORK/props``, ``--preset``/``--proposals``) instead of the RPN, and
``--mask-prior`` stacks each candidate's mask on the mask head's input.

``eval`` reports, on the thing classes, with ``bottomup.metrics.InstanceAP`` (the metric the region
heads of ``bench/msrc.py`` report, void pixels left out of the mask IoUs):

    apr50, apr70     SDS AP^r at mask IoU 0.5 and 0.7 (masks thresholded at 0.5)
    mask_ap          COCO-style mask AP, IoU 0.5:0.95
    box_ap           COCO-style box AP, IoU 0.5:0.95 (boxes rasterised to pixel masks, the same
                     matcher; ground-truth boxes are the masks' tight boxes)
    seconds_per_image  median wall time of one forward pass (the SCG proposals excluded with
                     --rois external, reported apart as seconds_proposals)

plus ``per_class_apr50`` and the metadata of the run.

``compare`` scores several models on the same images with the same code (:func:`score_instances`):
the shipped region heads (``heads``, or ``NAME=heads:PATH``) and Mask R-CNN checkpoints
(``NAME=PATH``, RPN or SCG RoIs). Every model that takes candidates gets the same cached SCG
proposals (``WORK/props``), so ``seconds_per_image`` leaves the proposals out for all of them. It
prints the table (best of each column in bold) and the per-class AP^r@0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def _dataset(root: Path, work: Path, split: str):
    from deep.data import SegmentationDataset, msrc_to_layout

    if (root / "groundTruth").is_dir():
        msrc_to_layout(root, work / "layout")
        return SegmentationDataset(work / "layout", split)
    return SegmentationDataset(root, split)


def _device(name):
    import torch

    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(things, args, pretrained: bool = True):
    """A fresh MaskRCNN for ``things`` with the command-line sizes."""
    from deep.models import MaskRCNN

    return MaskRCNN(len(things) + 1, pretrained_backbone=pretrained, rois=args.rois,
                    mask_prior=args.mask_prior, min_size=args.min_size, max_size=args.max_size,
                    trainable_backbone_layers=args.trainable_layers)


def load_model(path, device=None):
    """MaskRCNN, thing class ids and class names from a ``maskrcnn.ckpt`` of ``train``."""
    from deep.models.maskrcnn import load_maskrcnn

    return tuple(load_maskrcnn(path, "cpu" if device is None else device))


def _metadata(device) -> dict:
    import subprocess

    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:  # pragma: no cover
        commit = ""
    return {"git_commit": commit, "torch": torch.__version__, "device": str(device),
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def _write_json(path, doc) -> None:
    from bottomup.io.files import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1))


def _proposals(ds, work, args):
    from deep.training import cache_proposals

    t0 = time.perf_counter()
    cache_proposals(ds, work, n=args.proposals, preset=args.preset, workers=args.workers, owt=args.owt)
    return time.perf_counter() - t0


def cmd_train(args) -> int:
    import torch

    from deep.training import train_maskrcnn

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    ds = _dataset(Path(args.root), work, args.split)
    if args.rois == "external":
        _proposals(ds, work, args)
    device = _device(args.device)
    torch.manual_seed(args.seed)
    model = build_model(ds.things, args)
    res = train_maskrcnn(model, ds, work, iterations=args.iterations, batch_size=args.batch_size,
                         lr=args.lr, warmup=args.warmup, checkpoint_every=args.checkpoint_every,
                         seed=args.seed, device=device,
                         max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes)
    hist = res["history"]
    sec = [h["seconds"] for h in hist]
    cpu = [h["cpu_seconds"] for h in hist if "cpu_seconds" in h]
    head = [h["loss"] for h in hist[:20]]
    tail = [h["loss"] for h in hist[-20:]]
    out = {"iteration": res["iteration"], "iterations": args.iterations, "batch_size": args.batch_size,
           "seconds_this_call": res["seconds"],
           "seconds_per_iteration_median": float(np.median(sec)) if sec else None,
           "cpu_seconds_per_iteration_median": float(np.median(cpu)) if cpu else None,
           "loss_first20_mean": float(np.mean(head)) if head else None,
           "loss_last20_mean": float(np.mean(tail)) if tail else None,
           "losses_last20_mean": {k: float(np.mean([h[k] for h in hist[-20:]]))
                                  for k in (hist[-1] if hist else {}) if k.startswith("loss_")},
           "checkpoint": str(work / "maskrcnn.ckpt"), "config": {k: (list(v) if isinstance(v, tuple) else v)
                                                                for k, v in model.config.items()},
           "metadata": _metadata(device)}
    print(json.dumps({k: v for k, v in out.items() if k not in ("config", "metadata")}, indent=1))
    if args.json:
        _write_json(args.json, {**out, "history": hist})
    return 0


def _rasterise_boxes(boxes: np.ndarray, shape) -> np.ndarray:
    """(K, H, W) bool: the pixels whose centres lie in each continuous xyxy box."""
    h, w = shape
    ys = np.arange(h) + 0.5
    xs = np.arange(w) + 0.5
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    inside_y = (ys[None] >= boxes[:, 1:2]) & (ys[None] <= boxes[:, 3:4])
    inside_x = (xs[None] >= boxes[:, 0:1]) & (xs[None] <= boxes[:, 2:3])
    return inside_y[:, :, None] & inside_x[:, None, :]


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(K, 4) continuous xyxy boxes of (K, H, W) masks (pixel ``c`` spans ``[c, c + 1)``); an
    empty mask gets ``(0, 0, 0, 0)``, which covers no pixel centre."""
    from bottomup.masks import masks_to_boxes

    out = np.zeros((len(masks), 4), np.float64)
    full = masks.any(axis=(1, 2))
    if full.any():
        out[full] = masks_to_boxes(masks[full]) + np.array([0, 0, 1, 1])
    return out


def score_instances(ds, results, n_classes: int) -> dict:
    """The figures of ``eval`` and ``compare`` on the thing classes of ``ds``.

    ``results`` yields ``(sample, instances, seconds)``: a sample of ``ds``, its
    :class:`deep.segmenter.Instances` (classes are dataset ids; ``boxes`` xyxy, or None to take the
    masks' boxes) and the seconds the model took. Ground truth: the non-crowd thing instances;
    void pixels are left out of the mask IoUs; ground-truth boxes are the masks' tight boxes; box
    IoUs are IoUs of the boxes rasterised on the pixel grid (pixel centres inside).
    """
    from bottomup.metrics.instance import InstanceAP, InstanceParams

    apr = InstanceAP(n_classes, InstanceParams.sds())
    coco = InstanceAP(n_classes, InstanceParams.coco())
    box = InstanceAP(n_classes, InstanceParams.coco())
    things = sorted(ds.things)
    times = []
    for sample, inst, seconds in results:
        times.append(seconds)
        keep = np.array([c in things and not cr for c, cr in zip(sample.classes, sample.crowd, strict=True)],
                        bool)
        gm, gc = sample.masks[keep], sample.classes[keep]
        nonempty = gm.any(axis=(1, 2))
        gm, gc = gm[nonempty], gc[nonempty]
        pk = np.isin(inst.classes, things)
        masks, labels, scores = inst.masks[pk], inst.classes[pk], inst.scores[pk]
        boxes = mask_boxes(masks) if inst.boxes is None else inst.boxes[pk]
        apr.update(masks, labels, scores, gm, gc, void=sample.void)
        coco.update(masks, labels, scores, gm, gc, void=sample.void)
        shape = sample.labels.shape
        gb = _rasterise_boxes(mask_boxes(gm), shape)
        box.update(_rasterise_boxes(boxes, shape), labels, scores, gb, gc)
    a, c, b = apr.compute(), coco.compute(), box.compute()

    def mean(x):
        x = np.asarray(x, np.float64)
        return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")

    return {"apr50": mean(a.ap[0][things]), "apr70": mean(a.ap[1][things]), "mask_ap": mean(c.ap[:, things]),
            "box_ap": mean(b.ap[:, things]), "seconds_per_image": float(np.median(times)),
            "per_class_apr50": {ds.classes[k]: (None if np.isnan(a.ap[0][k]) else float(a.ap[0][k]))
                                for k in things},
            "n_images": len(times)}


def _needs_candidates(seg) -> bool:
    """The heads score candidates; a Mask R-CNN does when trained on external RoIs."""
    from deep.segmenter import MaskRCNNSegmenter

    return not isinstance(seg, MaskRCNNSegmenter) or seg.model.rois == "external"


def predictions(seg, ds, work, *, limit=None, progress=True):
    """Yield ``(sample, instances, seconds)`` of a segmenter (``deep.segmenter.DeepSegmenter`` or
    ``MaskRCNNSegmenter``) over ``ds``; the candidates come from ``WORK/props`` (cached first), so
    ``seconds`` (one ``predict``) leaves the proposals out."""
    import torch

    from deep.training import load_proposals

    n = len(ds) if limit is None else min(limit, len(ds))
    cuda = getattr(seg, "device", torch.device("cpu")).type == "cuda"
    for i in range(n):
        sample = ds[i]
        cands = load_proposals(work, ds.names[i]) if _needs_candidates(seg) else None
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = seg.predict(sample.image, cands)
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if progress and i % 10 == 0:
            print(f"{i + 1}/{n} {sample.name} {dt:.2f}s {len(res.instances)} instances", flush=True)
        yield sample, res.instances, dt


def evaluate(model, ds, work, things, n_classes, *, limit=None, device=None, progress=True) -> dict:
    """AP^r at 0.5/0.7, mask AP, box AP and timing of ``model`` on ``ds`` (see the module notes)."""
    from deep.segmenter import MaskRCNNSegmenter

    seg = MaskRCNNSegmenter(model, things, ds.classes, device=device or "cpu")
    return score_instances(ds, predictions(seg, ds, work, limit=limit, progress=progress), n_classes)


def cmd_eval(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    device = _device(args.device)
    ckpt = Path(args.weights) if args.weights else work / "maskrcnn.ckpt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"--weights {ckpt} not found: run `bench/maskrcnn.py train` first")
    model, things, classes, iteration = load_model(ckpt, device)
    ds = _dataset(Path(args.root), work, args.split)
    if args.limit is not None:
        ds.names = ds.names[: args.limit]
    t_props = _proposals(ds, work, args) if model.rois == "external" else None
    out = evaluate(model, ds, work, things, len(classes), device=device)
    out.update({"split": args.split, "weights": str(ckpt), "iteration": iteration, "rois": model.rois,
                "mask_prior": model.mask_prior,
                "seconds_proposals_total": t_props, "metadata": _metadata(device)})
    print(json.dumps({k: v for k, v in out.items() if k not in ("per_class_apr50", "metadata")}, indent=1))
    if args.json:
        _write_json(args.json, out)
    return 0


def _load_segmenter(spec: str, device):
    """``(name, segmenter)`` of a ``--model`` value: ``heads`` (shipped), ``NAME=heads:PATH`` or
    ``NAME=PATH`` (a Mask R-CNN checkpoint)."""
    from deep.segmenter import DeepSegmenter, MaskRCNNSegmenter

    name, _, path = spec.partition("=")
    if not path:
        name, path = (spec, "") if spec == "heads" else (Path(spec).parent.name or spec, spec)
    if path == "" or path.startswith("heads:"):
        return name, DeepSegmenter.load(path.removeprefix("heads:") or None, device=device)
    if not Path(path).is_file():
        raise FileNotFoundError(f"--model {spec}: checkpoint {path!r} not found")
    return name, MaskRCNNSegmenter.load(path, device=device)


def cmd_compare(args) -> int:
    import torch

    from deep.segmenter import MaskRCNNSegmenter

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    device = _device(args.device)
    ds = _dataset(Path(args.root), work, args.split)
    if args.limit is not None:
        ds.names = ds.names[: args.limit]
    specs = args.model or ["heads", str(work / "maskrcnn.ckpt")]
    models = [_load_segmenter(s, device) for s in specs]
    for name, seg in models:
        seen = [] if isinstance(seg, MaskRCNNSegmenter) else seg.seen(ds.names)
        if seen:
            print(f"WARNING: --model {name}: {len(seen)} of the {len(ds)} images of {args.split} are "
                  f"training images of these heads (e.g. {seen[0]}): its figures are not held-out figures",
                  file=sys.stderr, flush=True)
    t_props = None
    if any(_needs_candidates(seg) for _, seg in models):
        t_props = _proposals(ds, work, args)
    figures = {}
    for name, seg in models:
        print(f"== {name}", flush=True)
        f = score_instances(ds, predictions(seg, ds, work), len(ds.classes))
        f["kind"] = f"maskrcnn ({seg.model.rois} RoIs)" if isinstance(seg, MaskRCNNSegmenter) else "heads"
        f["uses_proposals"] = _needs_candidates(seg)
        figures[name] = f
    keys = ("apr50", "apr70", "mask_ap", "box_ap", "seconds_per_image")
    winners = {k: (min if k == "seconds_per_image" else max)(figures, key=lambda m, k=k: figures[m][k])
               for k in keys}
    lines = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for m, f in figures.items():
        lines.append(f"| {m} ({f['kind']}) | " + " | ".join(
            f"**{f[k]:.3f}**" if winners[k] == m else f"{f[k]:.3f}" for k in keys) + " |")
    classes = list(next(iter(figures.values()))["per_class_apr50"])
    lines += ["", "| AP^r@0.5 | " + " | ".join(figures) + " |", "|---" * (len(figures) + 1) + "|"]
    for c in classes:
        vals = [figures[m]["per_class_apr50"][c] for m in figures]
        lines.append(f"| {c} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |")
    print("\n".join(lines))
    if args.json:
        _write_json(args.json, {"split": args.split, "n_images": len(ds), "models": figures,
                                "winners": winners, "seconds_proposals_total": t_props,
                                "table": "\n".join(lines), "metadata": _metadata(device)})
    return 0


def cmd_ship(args) -> int:
    """Write the weights of a training checkpoint as a shipped file: float16, no optimiser state."""
    import hashlib

    from deep.models.maskrcnn import load_maskrcnn, save_maskrcnn

    work = Path(args.work)
    ckpt = Path(args.weights) if args.weights else work / "maskrcnn.ckpt"
    model, things, classes, iteration = load_maskrcnn(ckpt)
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    save_maskrcnn(args.out, model, things=things, classes=classes, iteration=iteration, half=True,
                  source={"checkpoint_sha256": digest, "command": args.command})
    print(f"{args.out}: {Path(args.out).stat().st_size / 1e6:.1f} MB, iteration {iteration}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "eval", "compare", "ship"):
        q = sub.add_parser(name)
        q.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "msrc"))
        q.add_argument("--split", default="train" if name == "train" else "val")
        q.add_argument("--work", default=os.path.join("out", "maskrcnn"),
                       help="layout, proposals and checkpoint folder (resumable)")
        q.add_argument("--json")
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--device", default=None, help="default: cuda when available, else cpu")
        q.add_argument("--workers", type=int, default=2, help="processes for the SCG proposals")
        q.add_argument("--preset", default="scg")
        q.add_argument("--proposals", type=int, default=1000)
        q.add_argument("--owt", default="plain")
        if name == "train":
            q.add_argument("--iterations", type=int, default=4000)
            q.add_argument("--batch-size", type=int, default=2)
            q.add_argument("--lr", type=float, default=0.01)
            q.add_argument("--warmup", type=int, default=100)
            q.add_argument("--checkpoint-every", type=int, default=50)
            q.add_argument("--max-minutes", type=float, default=None)
            q.add_argument("--seed", type=int, default=0)
            q.add_argument("--rois", choices=("rpn", "external"), default="rpn")
            q.add_argument("--mask-prior", action="store_true")
            q.add_argument("--min-size", type=int, default=320)
            q.add_argument("--max-size", type=int, default=512)
            q.add_argument("--trainable-layers", type=int, default=3)
        else:
            q.add_argument("--limit", type=int, default=None, help="first N images of the split")
        if name in ("eval", "ship"):
            q.add_argument("--weights", default=None, help="default WORK/maskrcnn.ckpt")
        if name == "ship":
            q.add_argument("--out", required=True, help="e.g. deep/weights/maskrcnn_msrc21.pt")
            q.add_argument("--command", default="", help="the training command, kept in the file")
        if name == "compare":
            q.add_argument("--model", action="append",
                           help="heads (the shipped heads), NAME=heads:PATH, or [NAME=]PATH of a Mask "
                                "R-CNN checkpoint; repeatable (default: heads and WORK/maskrcnn.ckpt)")
    args = p.parse_args(argv)
    return {"train": cmd_train, "eval": cmd_eval, "compare": cmd_compare, "ship": cmd_ship}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
