"""Train the learned contour network (deep.contours) on BSDS500 train.

    python bench/train_contours.py --root $BOTTOMUP_DATA/bsds500 --out runs/contours \
        [--device cuda] [--iterations 6000] [--minutes M] [--schedule-minutes M] [--batch-size 12]

Writes OUT/checkpoint.pt (resumable: rerun the same command after an interruption),
OUT/contours_lite0.pt (float16 weights, the file shipped in deep/weights/) and OUT/history.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "bsds500"),
                   help="the bsds500 folder (default $BOTTOMUP_DATA/bsds500)")
    p.add_argument("--split", default="train")
    p.add_argument("--out", required=True, help="run folder (checkpoint, weights, history)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--iterations", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--crop", type=int)
    p.add_argument("--minutes", type=float, help="stop after this wall time (resume later)")
    p.add_argument("--schedule-minutes", type=float,
                   help="run the cosine decay over this much training wall time and stop there "
                        "(--iterations then only bounds it): a full schedule on any device")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--lr", type=float, help="head learning rate (backbone: --lr-backbone)")
    p.add_argument("--lr-backbone", type=float)
    p.add_argument("--warmup", type=int, help="warm-up iterations")
    p.add_argument("--seed", type=int, help="seed of the augmentation and of torch")
    p.add_argument("--init", help="start from these weights (e.g. deep/weights/contours_lite0.pt) "
                                  "instead of ImageNet only: fine-tuning; ignored when resuming")
    args = p.parse_args(argv)

    from deep.contours import ContourNet, TrainConfig, train
    from deep.contours.net import load_contour_net
    from deep.contours.train import export_weights, load_bsds_training

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest kernels once
    cfg = TrainConfig()
    over = {k: v for k, v in {"iterations": args.iterations, "batch_size": args.batch_size,
                              "crop": args.crop, "max_minutes": args.minutes, "lr": args.lr,
                              "lr_backbone": args.lr_backbone, "warmup": args.warmup,
                              "seed": args.seed, "schedule_minutes": args.schedule_minutes}.items()
            if v is not None}
    cfg = replace(cfg, **over)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    images, consensus, ids = load_bsds_training(args.root, args.split)
    print(f"loaded {len(ids)} {args.split} images in {time.perf_counter() - t0:.1f}s", flush=True)
    if args.init:
        net = load_contour_net(args.init).train()
        print(f"initialised from {args.init}", flush=True)
    else:
        net = ContourNet(pretrained=True)
    hist = train(net, images, consensus, cfg, checkpoint=out / "checkpoint.pt", device=args.device,
                 log=lambda s: print(s, flush=True))
    size = export_weights(out / "checkpoint.pt", out / "contours_lite0.pt")
    hist.update({"n_images": len(ids), "split": args.split, "weights_bytes": size,
                 "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                 "torch": torch.__version__})
    with open(out / "history.json", "w") as f:
        json.dump(hist, f, indent=1)
    print(f"done: {hist['iterations']} iterations in {hist['seconds']:.0f}s; weights {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
