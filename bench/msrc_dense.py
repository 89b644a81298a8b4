"""Dense heads (FCN-8s, DeepLabv3+) on EfficientNet-Lite0, trained and evaluated on MSRC-21.

    python bench/msrc_dense.py --root $BOTTOMUP_DATA/msrc --head fcn8s|deeplabv3plus \\
        --json OUT.json [--epochs N] [--finetune {none,all}] [--threads 2] [--checkpoint PATH]

The dense-head rows of the deep-heads ablation (the per-pixel hypercolumn MLP of
``bench/msrc_pixel_baseline.py`` is the baseline row). Both heads sit on the ImageNet
EfficientNet-Lite0 of :func:`deep.backbone.efficientnet_lite0` (offline weights, output stride 32,
the backbone the hypercolumn pipeline uses):

* ``fcn8s``: :class:`deep.models.FCN` with ``variant="8s"`` (Long et al., CVPR 2015), fusing the
  stride-32, 16 and 8 taps.
* ``deeplabv3plus``: :class:`deep.models.DeepLabV3Plus` (Chen et al., ECCV 2018), ASPP on the
  stride-32 tap, decoder on the stride-4 tap. The paper's rates (6, 12, 18) are for output stride
  16 on 513x513 crops (a 33x33 map); an MSRC image (about 320x213) gives a 10x7 map at stride 32,
  where those rates would mostly sample padding, so the default rates are (2, 4, 6)
  (``--aspp-rates``).

Training uses ``train.txt`` only: images at native size (``--batch`` same-size images per step,
1 by default), horizontal flips,
cross-entropy with void (255) ignored, Adam with a polynomial (power 0.9) learning-rate decay
over the epochs. ``--finetune none`` freezes the backbone and caches its taps once per image and
flip, so that training the head is cheap; ``--finetune all`` trains the backbone too (learning
rate ``--backbone-lr``) with its BatchNorm layers kept in eval mode (batches of one image).
The checkpoint (``--checkpoint``, default ``OUT.json`` with ``.ckpt.pt``) is written atomically
after every epoch and a rerun of the same command resumes from it, taking exactly the steps of an
uninterrupted run (``--stop-after K`` trains K epochs and stops; a rerun of a finished run only
evaluates; a larger ``--epochs`` extends it). Evaluation runs the whole network (backbone
included) on every ``val.txt`` image at native size and reports pixel accuracy, mean class
accuracy, mean IoU and frequency-weighted IoU (:class:`bottomup.metrics.semantic.
SemanticSegmentationMetric`), and the CPU inference time per image.

BatchNorm in the DeepLabv3+ head: with one image per step, batch statistics are per-image
statistics, which erase every image-wide signal (the ASPP image-pooling branch above all) in
training and then differ from the running statistics used at test time. On MSRC-21 val that head
(frozen backbone, 12 epochs) reaches mIoU .671 with ``--head-bn train``, .817 with ``--batch 8``
and .838 with ``--head-bn frozen``; use the latter. Figures on val (58 images, one CPU thread):

==============================================  =========  ==========  =====
run                                             pixel acc  class acc   mIoU
==============================================  =========  ==========  =====
hypercolumn MLP (``msrc_pixel_baseline.py``)    .919       .896        .805
fcn8s, frozen backbone, 30 epochs               .904       .876        .778
fcn8s, fine-tuned, 10 epochs                    .933       .905        .826
deeplabv3plus, frozen, head-bn frozen, 12 ep.   .926       .921        .838
deeplabv3plus, fine-tuned from scratch, 10 ep.  .916       .880        .786
deeplabv3plus, staged (see below), 6 epochs     .935       .927        .852
==============================================  =========  ==========  =====

Staged: ``--init`` the frozen head-bn-frozen run's checkpoint, then ``--finetune all --lr 1e-4
--backbone-lr 1e-4 --head-bn frozen --epochs 6``. Frozen runs cache the taps (about 1 min), then
take 12 s (FCN) or 60 s (DeepLab) per epoch; fine-tuning takes about 90 s (FCN) or 100-150 s
(DeepLab) per epoch on a shared 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bottomup.io.msrc import MSRC_VOID, read_msrc21

NUM_CLASSES = 21
HEADS = ("fcn8s", "deeplabv3plus")
FINETUNE = ("none", "all")


class TapFeed(nn.Module):
    """A backbone wrapper that can hand cached taps to a head instead of computing them.

    Parameters
    ----------
    net : torch.nn.Module
        The real backbone (``forward_features``, ``feature_channels``).

    Notes
    -----
    While :attr:`preset` holds a dict of taps, :meth:`forward_features` returns it and ignores its
    input (which then only gives the heads the output size); otherwise it runs ``net``. The state
    dict is the backbone's under ``net.``, the same in both modes.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.feature_channels = dict(net.feature_channels)
        self.preset: dict[int, torch.Tensor] | None = None

    def forward_features(self, x: torch.Tensor) -> OrderedDict[int, torch.Tensor]:
        if self.preset is not None:
            return OrderedDict(self.preset)
        return self.net.forward_features(x)


def build_model(head: str, *, pretrained: bool = True, aspp_rates=(2, 4, 6)) -> nn.Module:
    """The head on a (wrapped) EfficientNet-Lite0 at output stride 32.

    Parameters
    ----------
    head : {"fcn8s", "deeplabv3plus"}
    pretrained : bool
        ImageNet backbone weights (offline); the head is randomly initialised.
    aspp_rates : sequence of int
        ASPP rates of DeepLabv3+ on the stride-32 tap.

    Returns
    -------
    model : torch.nn.Module
        ``model.backbone`` is a :class:`TapFeed`.
    """
    from deep.backbone import efficientnet_lite0
    from deep.models import FCN, DeepLabV3Plus

    if head not in HEADS:
        raise ValueError(f"`head` must be one of {HEADS}, but got {head!r}")
    feed = TapFeed(efficientnet_lite0(pretrained=pretrained))
    if head == "fcn8s":
        return FCN(feed, NUM_CLASSES, variant="8s")
    return DeepLabV3Plus(feed, NUM_CLASSES, high_level=32, low_level=4, aspp_rates=tuple(aspp_rates))


def load_split(root, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, image (H, W, 3) uint8, labels (H, W) uint8)]`` of ``root/<split>.txt``."""
    from bottomup.io import read_image

    root = Path(root)
    out = []
    for name in (root / f"{split}.txt").read_text().split():
        img = read_image(root / "images" / f"{name}.png")
        lab = read_msrc21(root / "groundTruth" / f"{name}_GT.mat")
        if img.shape[:2] != lab.shape:
            raise ValueError(f"{name}: image {img.shape[:2]} and ground truth {lab.shape} differ")
        out.append((name, img, lab))
    return out


def _tensors(img: np.ndarray, lab: np.ndarray, flip: bool):
    from deep.backbone import preprocess

    if flip:
        img, lab = img[:, ::-1], lab[:, ::-1]
    x = preprocess(np.ascontiguousarray(img), size=None)
    y = torch.from_numpy(lab.astype(np.int64))[None]
    return x, y


def _set_train_mode(model: nn.Module, head_bn: str) -> None:
    model.train()
    model.backbone.net.eval()  # BatchNorm statistics of the backbone stay the ImageNet ones
    if head_bn == "frozen":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def _batches(data, batch: int, g: torch.Generator) -> list[list[tuple[int, bool]]]:
    """One epoch of ``[(image index, flip)]`` batches: shuffled, each of same-size images."""
    order = torch.randperm(len(data), generator=g).tolist()
    flips = torch.rand(len(data), generator=g).lt(0.5).tolist()
    by_shape: dict[tuple, list] = {}
    for k, i in enumerate(order):
        by_shape.setdefault(data[i][1].shape[:2], []).append((i, flips[k]))
    out = [v[j : j + batch] for v in by_shape.values() for j in range(0, len(v), batch)]
    perm = torch.randperm(len(out), generator=g).tolist()
    return [out[j] for j in perm]


def _n_batches(data, batch: int) -> int:
    shapes: dict[tuple, int] = {}
    for _, img, _ in data:
        shapes[img.shape[:2]] = shapes.get(img.shape[:2], 0) + 1
    return sum(-(-n // batch) for n in shapes.values())


def _used_taps(model: nn.Module) -> set[int]:
    """The backbone taps the head reads (only these are cached)."""
    if hasattr(model, "strides"):  # FCN
        return set(model.strides)
    return {model.high_level, model.low_level}


def _head_params(model: nn.Module):
    return [p for n, p in model.named_parameters() if not n.startswith("backbone.")]


#: Backbone layers after the stride-32 tap (ImageNet classifier), which no dense head uses.
_UNUSED = ("backbone.net._conv_head.", "backbone.net._bn1.", "backbone.net._fc.")


def count_params(model: nn.Module, finetune: str = "none") -> dict[str, int]:
    """Parameters of the dense network (the unused ImageNet classifier left out), of its head and
    backbone, those trained in the run, and those of the unused classifier."""
    named = dict(model.named_parameters())
    unused = sum(p.numel() for n, p in named.items() if n.startswith(_UNUSED))
    head = sum(p.numel() for n, p in named.items() if not n.startswith("backbone."))
    total = sum(p.numel() for p in named.values()) - unused
    # fixed layers (the final bilinear upsampling of FCN) are parameters without gradient
    fixed = sum(p.numel() for n, p in named.items() if not n.startswith("backbone.") and not p.requires_grad)
    return {
        "n_params": total,
        "n_params_head": head,
        "n_params_backbone": total - head,
        "n_params_trained": (total if finetune == "all" else head) - fixed,
        "n_params_unused_classifier": unused,
    }


def train(
    model: nn.Module,
    data,
    *,
    epochs: int,
    finetune: str = "none",
    checkpoint=None,
    lr: float = 1e-3,
    backbone_lr: float = 1e-4,
    weight_decay: float = 1e-4,
    seed: int = 0,
    batch: int = 1,
    head_bn: str = "train",
    config: dict | None = None,
    stop_after: int | None = None,
    init=None,
    log=print,
) -> dict:
    """Train ``model`` on ``data`` for ``epochs`` epochs, resuming from ``checkpoint`` if present.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`build_model`.
    data : list of (name, (H, W, 3) uint8, (H, W) uint8)
        Training images and MSRC-21 labels (255 void, ignored by the loss).
    epochs : int
        Total epochs; a resumed run continues from the epoch stored in the checkpoint. The
        learning-rate schedule spans ``epochs``: resuming with the same ``epochs`` takes exactly
        the steps of an uninterrupted run; a larger one extends (and re-stretches) the schedule.
    finetune : {"none", "all"}
        Frozen backbone (taps cached once per image and flip) or all layers trained.
    checkpoint : path-like or None
        Written atomically after every epoch; loaded first when it exists. Its ``config`` must
        match ``config``.
    lr, backbone_lr, weight_decay : float
        Adam learning rates of the head and the backbone, decayed by ``(1 - t / T) ** 0.9`` over
        the ``T`` steps of all epochs.
    seed : int
        The order of the images and the flips of epoch ``e`` come from ``seed`` and ``e`` alone,
        so a resumed run takes the same steps as an uninterrupted one.
    batch : int
        Images per step. A batch holds images of one size only (no padding; 240 of the 260 MSRC
        train images are 320x213), so some batches are smaller.
    head_bn : {"train", "frozen"}
        BatchNorm layers of the head normalise with batch statistics while training ("train",
        standard), or stay in eval mode ("frozen": their initial running statistics, i.e. a
        learned affine map only). With one image per step, "train" normalises per image, which
        removes any image-wide signal (e.g. the image-pooling branch of ASPP) in training.
    config : dict or None
        Stored in the checkpoint and checked on resume.
    stop_after : int or None
        Train at most this many epochs in this call (then resume later), e.g. to fit a time slot.
    init : path-like or None
        Start from the weights of another run's checkpoint (e.g. a head trained on the frozen
        backbone, then fine-tuned: staged training); ignored when resuming from ``checkpoint``.

    Returns
    -------
    info : dict
        ``epochs`` (done), ``start_epoch`` (where this call began), ``seconds_train`` (all
        epochs, resumed ones included), ``seconds_cache`` (tap caching of this call),
        ``history`` (mean loss per epoch).
    """
    if finetune not in FINETUNE:
        raise ValueError(f"`finetune` must be one of {FINETUNE}, but got {finetune!r}")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"`epochs` must be a non-negative integer, but got {epochs!r}")
    if not data:
        raise ValueError("`data` is empty")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"`batch` must be a positive integer, but got {batch!r}")
    if head_bn not in ("train", "frozen"):
        raise ValueError(f"`head_bn` must be 'train' or 'frozen', but got {head_bn!r}")
    config = dict(config or {}, finetune=finetune, batch=batch, head_bn=head_bn)
    backbone = model.backbone.net
    for p in backbone.parameters():
        p.requires_grad_(finetune == "all")
    groups = [{"params": _head_params(model), "lr": lr, "base_lr": lr}]
    if finetune == "all":
        groups.append({"params": list(backbone.parameters()), "lr": backbone_lr, "base_lr": backbone_lr})
    opt = torch.optim.Adam(groups, weight_decay=weight_decay)
    start, seconds, history = 0, 0.0, []
    if checkpoint is not None and os.path.exists(checkpoint):
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        # checkpoints written before --batch/--head-bn existed used 1 and "train"
        saved = {"batch": 1, "head_bn": "train", **state["config"]}
        if saved != config:
            raise ValueError(
                f"checkpoint {checkpoint} was made with {state['config']}, not {config}; "
                "remove it or pass another --checkpoint"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, seconds, history = state["epoch"], state["seconds_train"], state["history"]
        log(f"resumed from {checkpoint} at epoch {start}")
    elif init is not None:
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=False)["model"])
        log(f"initialised from {init}")
    per_epoch = _n_batches(data, batch)
    steps_total = max(epochs * per_epoch, 1)
    t_cache = 0.0
    cache = None
    if finetune == "none" and start < epochs:
        t0 = time.perf_counter()
        cache = {}
        used = _used_taps(model)
        backbone.eval()
        with torch.no_grad():
            for i, (_, img, lab) in enumerate(data):
                for flip in (False, True):
                    x, _ = _tensors(img, lab, flip)
                    taps = backbone.forward_features(x)
                    cache[i, flip] = {k: v for k, v in taps.items() if k in used}
        t_cache = time.perf_counter() - t0
        log(f"cached backbone taps of {len(data)} images x 2 flips in {t_cache:.1f} s")
    stop = epochs if stop_after is None else min(epochs, start + stop_after)
    for epoch in range(start, stop):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        # batch 1 keeps the order of the first version of this script (same steps on resume)
        if batch == 1:
            order = torch.randperm(len(data), generator=g).tolist()
            flips = torch.rand(len(data), generator=g).lt(0.5).tolist()
            steps = [[(i, flips[k])] for k, i in enumerate(order)]
        else:
            steps = _batches(data, batch, g)
        _set_train_mode(model, head_bn)
        total = 0.0
        for k, items in enumerate(steps):
            step = epoch * per_epoch + k
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * (1 - step / steps_total) ** 0.9
            pairs = [_tensors(data[i][1], data[i][2], f) for i, f in items]
            x = torch.cat([a for a, _ in pairs])
            y = torch.cat([b for _, b in pairs])
            if cache is not None:
                taps = [cache[i, f] for i, f in items]
                model.backbone.preset = {s: torch.cat([t[s] for t in taps]) for s in taps[0]}
            try:
                z = model(x)
            finally:
                model.backbone.preset = None
            loss = F.cross_entropy(z, y, ignore_index=MSRC_VOID)
            opt.zero_grad(set_to_none=True)
            if torch.isfinite(loss) and (y != MSRC_VOID).any():
                loss.backward()
                opt.step()
                total += float(loss.detach())
        seconds += time.perf_counter() - t0
        history.append(total / len(steps))
        log(f"epoch {epoch + 1}/{epochs} loss {history[-1]:.4f} ({time.perf_counter() - t0:.1f} s)")
        if checkpoint is not None:
            state = {
                "config": config,
                "epoch": epoch + 1,
                "seconds_train": seconds,
                "history": history,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
            }
            from bottomup.io.files import atomic_path

            with atomic_path(checkpoint) as tmp:
                torch.save(state, tmp)
    model.eval()
    return {
        "epochs": max(stop, start),
        "epochs_planned": epochs,
        "start_epoch": start,
        "seconds_train": seconds,
        "seconds_cache": t_cache,
        "history": history,
    }


def evaluate(model: nn.Module, data, *, save_dir=None) -> dict:
    """Scores of ``model`` (backbone included, eval mode) on ``data`` at native size.

    Parameters
    ----------
    model : torch.nn.Module
    data : list of (name, (H, W, 3) uint8, (H, W) uint8)
    save_dir : path-like or None
        If given, the (21, H, W) float32 class probabilities of each image go to
        ``save_dir/<name>.npy`` (the unaries of ``bench/crf.py --unaries``).

    Returns
    -------
    scores : dict
        ``pixel_acc``, ``mean_class_acc``, ``miou``, ``fw_iou``, ``per_class_iou`` and
        ``seconds_per_image`` (median time of preprocessing + forward + argmax, CPU).
    """
    from bottomup.metrics.semantic import SemanticSegmentationMetric
    from deep.backbone import preprocess

    model.eval()
    metric = SemanticSegmentationMetric(NUM_CLASSES, ignore_index=MSRC_VOID)
    times = []
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    with torch.no_grad():
        model(preprocess(data[0][1], size=None))  # warm-up, not timed
        for name, img, lab in data:
            t0 = time.perf_counter()
            z = model(preprocess(img, size=None))[0]
            pred = z.argmax(0).numpy()
            times.append(time.perf_counter() - t0)
            metric.update(lab, pred)
            if save_dir is not None:
                np.save(Path(save_dir) / f"{name}.npy", torch.softmax(z, 0).numpy().astype(np.float32))
    s = metric.compute()
    return {
        "pixel_acc": float(s.pixel_accuracy),
        "mean_class_acc": float(s.mean_accuracy),
        "miou": float(s.mean_iou),
        "fw_iou": float(s.fw_iou),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in s.class_iou],
        "per_class_acc": [None if np.isnan(v) else float(v) for v in s.class_accuracy],
        "seconds_per_image": float(np.median(times)),
        "seconds_per_image_iqr": [float(q) for q in np.percentile(times, [25, 75])],
        "seconds_per_image_mean": float(np.mean(times)),
        "load_average_at_eval": load,
        "n_images": len(data),
    }


def run(args, train_data=None, val_data=None, *, pretrained: bool = True, log=print) -> dict:
    """Build, train (or resume) and evaluate; return the result dict written as JSON."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rates = tuple(int(r) for r in str(args.aspp_rates).split(","))
    if train_data is None:
        train_data = load_split(args.root, "train")
    if val_data is None:
        val_data = load_split(args.root, "val")
    model = build_model(args.head, pretrained=pretrained, aspp_rates=rates)
    config = {
        "head": args.head,
        "lr": args.lr,
        "backbone_lr": args.backbone_lr,
        "weight_decay": args.weight_decay,
        "seed": args.seed,
        "pretrained": pretrained,
        "aspp_rates": list(rates) if args.head == "deeplabv3plus" else None,
        "n_train": len(train_data),
    }
    if args.init is not None:
        config["init"] = str(args.init)
    info = train(
        model,
        train_data,
        epochs=args.epochs,
        finetune=args.finetune,
        checkpoint=args.checkpoint,
        lr=args.lr,
        backbone_lr=args.backbone_lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        batch=args.batch,
        head_bn=args.head_bn,
        config=config,
        stop_after=args.stop_after,
        init=args.init,
        log=log,
    )
    scores = evaluate(model, val_data, save_dir=args.save_probs)
    res = {
        "head": args.head,
        "backbone": "efficientnet_lite0 (ImageNet, output stride 32)",
        "finetune": args.finetune,
        "batch": args.batch,
        "head_bn": args.head_bn,
        "init": args.init,
        **scores,
        "epochs": info["epochs"],
        "epochs_planned": info["epochs_planned"],
        "start_epoch": info["start_epoch"],
        "seconds_train": info["seconds_train"],
        "seconds_cache_taps": info["seconds_cache"],
        "loss_history": info["history"],
        **count_params(model, args.finetune),
        "n_train_images": len(train_data),
        "n_val_images": len(val_data),
        "threads": args.threads,
        "config": config,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "metadata": _metadata(args.threads),
    }
    if args.head == "deeplabv3plus":
        res["aspp"] = {"high_level_stride": 32, "low_level_stride": 4, "rates": list(rates)}
    return res


def _metadata(threads: int) -> dict:
    try:
        commit = subprocess.check_output(
            ["git", "rev-parse", "HEAD"], text=True, cwd=Path(__file__).parent, stderr=subprocess.DEVNULL
        ).strip()
    except Exception:  # noqa: BLE001
        commit = None
    return {
        "git_commit": commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": threads,
        "cpu": platform.processor() or platform.machine(),
        "n_cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "note": "times on a CPU shared with other jobs; seconds_train sums the epochs of all sessions",
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "msrc"))
    p.add_argument("--head", choices=HEADS, required=True)
    p.add_argument("--json", required=True, help="write the figures here")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--finetune", choices=FINETUNE, default="none")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint", help="resumable checkpoint (default: JSON path + .ckpt.pt)")
    p.add_argument("--lr", type=float, default=1e-3, help="head learning rate (Adam)")
    p.add_argument("--backbone-lr", type=float, default=1e-4, help="with --finetune all")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--aspp-rates", default="2,4,6", help="DeepLabv3+ rates on the stride-32 tap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=1, help="images per step (same-size images only)")
    p.add_argument(
        "--head-bn",
        choices=("train", "frozen"),
        default="train",
        help="BatchNorm of the head: batch statistics in training, or eval mode throughout",
    )
    p.add_argument(
        "--stop-after", type=int, help="train at most this many epochs now (resume by rerunning the command)"
    )
    p.add_argument("--init", help="start from the weights of this checkpoint (staged training)")
    p.add_argument("--save-probs", help="folder for the val class probabilities (.npy)")
    p.add_argument(
        "--random-init",
        action="store_true",
        help="random backbone instead of the ImageNet weights (tests only)",
    )
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.epochs < 0:
        raise SystemExit("--epochs must be >= 0")
    if args.checkpoint is None:
        args.checkpoint = str(Path(args.json).with_suffix("")) + ".ckpt.pt"
    res = run(args, pretrained=not args.random_init, log=lambda m: print(m, flush=True))
    text = json.dumps(res, indent=1)
    print(text)
    from bottomup.io.files import atomic_path

    with atomic_path(args.json) as tmp:
        Path(tmp).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
