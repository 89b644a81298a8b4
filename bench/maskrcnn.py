"""Train and evaluate Mask R-CNN (deep.models.MaskRCNN) on a dataset in the deep.data layout.

    python bench/maskrcnn.py train --root $BOTTOMUP_DATA/msrc --split train [--work out/maskrcnn]
                                   [--iterations 4000] [--rois rpn|external] [--mask-prior]
                                   [--max-minutes M] [--json OUT.json]
    python bench/maskrcnn.py eval  --root $BOTTOMUP_DATA/msrc --split val [--work out/maskrcnn]
                                   [--limit N] --json OUT.json

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
    """(K, H, W) bool: the pixels whose centres lie in each xyxy box."""
    h, w = shape
    ys = np.arange(h) + 0.5
    xs = np.arange(w) + 0.5
    inside_y = (ys[None] >= boxes[:, 1:2]) & (ys[None] <= boxes[:, 3:4])
    inside_x = (xs[None] >= boxes[:, 0:1]) & (xs[None] <= boxes[:, 2:3])
    return inside_y[:, :, None] & inside_x[:, None, :]


def evaluate(model, ds, work, things, n_classes, *, limit=None, device=None, progress=True) -> dict:
    """AP^r at 0.5/0.7, mask AP, box AP and timing of ``model`` on ``ds`` (see the module notes)."""
    import torch

    from bottomup.masks import masks_to_boxes
    from bottomup.metrics.instance import InstanceAP, InstanceParams
    from deep.training import load_proposals

    apr = InstanceAP(n_classes, InstanceParams.sds())
    coco = InstanceAP(n_classes, InstanceParams.coco())
    box = InstanceAP(n_classes, InstanceParams.coco())
    thing_set = set(things)
    times = []
    n = len(ds) if limit is None else min(limit, len(ds))
    model.eval()
    for i in range(n):
        sample = ds[i]
        img = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1))).float().to(device)
        props = None
        if model.rois == "external":
            from deep.models.maskrcnn import candidates_to_proposals

            p = candidates_to_proposals(load_proposals(work, ds.names[i]), with_masks=model.mask_prior)
            props = [{k: v.to(device) for k, v in p.items()}]
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model([img], proposals=props)[0]
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        masks = (out["masks"][:, 0] >= 0.5).cpu().numpy()
        labels = np.array([things[j - 1] for j in out["labels"].cpu().tolist()], np.int64)
        scores = out["scores"].cpu().numpy().astype(np.float64)
        keep = np.array([c in thing_set and not cr for c, cr in zip(sample.classes, sample.crowd,
                                                                     strict=True)], bool)
        gm, gc = sample.masks[keep], sample.classes[keep]
        nonempty = gm.reshape(len(gm), -1).any(1)
        gm, gc = gm[nonempty], gc[nonempty]
        apr.update(masks, labels, scores, gm, gc, void=sample.void)
        coco.update(masks, labels, scores, gm, gc, void=sample.void)
        shape = sample.labels.shape
        gb = masks_to_boxes(gm)[:, [1, 0, 3, 2]].astype(np.float64) if len(gm) else np.zeros((0, 4))
        box.update(_rasterise_boxes(out["boxes"].cpu().numpy(), shape), labels, scores,
                   _rasterise_boxes(gb, shape), gc)
        if progress and i % 10 == 0:
            print(f"{i + 1}/{n} {sample.name} {times[-1]:.2f}s {len(labels)} detections", flush=True)
    a, c, b = apr.compute(), coco.compute(), box.compute()
    cls = sorted(things)

    def mean(x):
        x = np.asarray(x, np.float64)
        return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")

    return {"apr50": mean(a.ap[0][cls]), "apr70": mean(a.ap[1][cls]), "mask_ap": mean(c.ap[:, cls]),
            "box_ap": mean(b.ap[:, cls]), "seconds_per_image": float(np.median(times)),
            "per_class_apr50": {ds.classes[k]: (None if np.isnan(a.ap[0][k]) else float(a.ap[0][k]))
                                for k in cls},
            "n_images": n}


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "eval"):
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
            q.add_argument("--weights", default=None, help="default WORK/maskrcnn.ckpt")
            q.add_argument("--limit", type=int, default=None, help="first N images of the split")
    args = p.parse_args(argv)
    return {"train": cmd_train, "eval": cmd_eval}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
