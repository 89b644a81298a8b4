"""Per-pixel hypercolumn baseline on MSRC-21: a small MLP on frozen EfficientNet-Lite0 hypercolumns.

    python bench/msrc_pixel_baseline.py --root $BOTTOMUP_DATA/msrc --out DIR [--json OUT.json]

Trains on ``train.txt`` (pixels sampled per image), reports global pixel accuracy, mean class
accuracy and mIoU on ``val.txt`` (MSRC-21: horse and mountain void), and writes the per-pixel class
probabilities of every val image as ``DIR/<name>.npy`` (21, H, W) float32: the unaries that
``bench/crf.py --unaries DIR`` refines. This is the baseline row of the deep-heads ablation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bottomup.io.msrc import MSRC_VOID, read_msrc21

VOID = MSRC_VOID


def main(argv=None) -> int:
    import torch
    import torch.nn.functional as F

    from bottomup.io import read_image
    from bottomup.metrics.semantic import SemanticSegmentationMetric
    from deep.features import Hypercolumns

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "msrc"))
    p.add_argument("--out", required=True, help="folder for the val probability maps")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--pixels", type=int, default=1500, help="training pixels sampled per image")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    root = Path(args.root)
    names = {s: (root / f"{s}.txt").read_text().split() for s in ("train", "val")}
    hc = Hypercolumns().eval()

    def columns(name, stride):
        img = read_image(root / "images" / f"{name}.png")
        x = hc.image_to_tensor(img)
        h, w = img.shape[:2]
        with torch.no_grad():
            f = hc(x, size=(-(-h // stride), -(-w // stride)))[0]
        return f, h, w

    t0 = time.perf_counter()
    feats, labels = [], []
    for name in names["train"]:
        f, h, w = columns(name, 2)
        lab = read_msrc21(root / "groundTruth" / f"{name}_GT.mat")[::2, ::2]
        ok = np.flatnonzero(lab.ravel() != VOID)
        pick = rng.choice(ok, size=min(args.pixels, ok.size), replace=False)
        feats.append(f.reshape(f.shape[0], -1)[:, torch.from_numpy(pick)].T)
        labels.append(torch.from_numpy(lab.ravel()[pick].astype(np.int64)))
    xs, ys = torch.cat(feats), torch.cat(labels)
    mean, std = xs.mean(0), xs.std(0) + 1e-6
    t_feat = time.perf_counter() - t0
    mlp = torch.nn.Sequential(torch.nn.Linear(xs.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 21))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-3, weight_decay=1e-5)
    xn = (xs - mean) / std
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        perm = torch.randperm(len(ys))
        for k in range(0, len(ys), 2048):
            idx = perm[k:k + 2048]
            loss = F.cross_entropy(mlp(xn[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}/{args.epochs} loss {float(loss):.3f}", flush=True)
    t_train = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metric = SemanticSegmentationMetric(21, ignore_index=VOID)
    t0 = time.perf_counter()
    for name in names["val"]:
        f, h, w = columns(name, 2)
        with torch.no_grad():
            z = mlp((f.reshape(f.shape[0], -1).T - mean) / std).T.reshape(21, *f.shape[1:])
            prob = torch.softmax(F.interpolate(z[None], size=(h, w), mode="bilinear",
                                               align_corners=False)[0], 0).numpy()
        np.save(out / f"{name}.npy", prob.astype(np.float32))
        metric.update(read_msrc21(root / "groundTruth" / f"{name}_GT.mat"), prob.argmax(0))
    t_val = (time.perf_counter() - t0) / len(names["val"])
    s = metric.compute()
    res = {"pixel_acc": s.pixel_accuracy, "mean_class_acc": s.mean_accuracy, "miou": s.mean_iou,
           "fw_iou": s.fw_iou, "n_train_pixels": int(len(ys)), "seconds_features": t_feat,
           "seconds_train": t_train, "seconds_per_val_image": t_val}
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
