"""Training of :class:`deep.contours.ContourNet` on BSDS500 (or any images + boundary maps).

Data: images with one or more human boundary maps each; the target is the annotators' consensus
(fraction of annotators marking a pixel). As in RCF, pixels marked by too few annotators
(``0 < consensus < eta``) are ignored, the rest are positives (``>= eta``) or negatives (0).
Augmentation runs on the training device for the whole batch at once: random rotation (any
angle), scale, flip and crop by one affine resampling of image and consensus; orientation targets
are recomputed from the augmented consensus (structure tensor), so they stay right under any
rotation. Loss: class-balanced binary cross-entropy on the fused and side outputs (HED/RCF
weighting: positives ``|Y-|/|Y|``, negatives ``lambda |Y+|/|Y|``) plus cross-entropy of the
orientation bins on positive pixels. Checkpoints are written atomically; training resumes from the
last one.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deep.backbone.efficientnet import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["TrainConfig", "load_bsds_training", "balanced_bce", "orientation_targets",
           "augment_batch", "train", "export_weights"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of contour training (the shipped model's values are the defaults)."""

    iterations: int = 6000
    batch_size: int = 12
    crop: int = 320
    lr: float = 3e-4
    lr_backbone: float = 1e-4
    weight_decay: float = 1e-4
    eta: float = 0.3          # consensus needed for a positive (RCF's eta)
    lam: float = 1.1          # RCF's weight of negatives
    side_weight: float = 0.5  # weight of each side output's loss relative to the fused one
    orient_weight: float = 0.5
    scale_range: tuple = (0.7, 1.4)
    n_orient: int = 8
    warmup: int = 200         # linear learning-rate warm-up, iterations
    checkpoint_every: int = 500
    seed: int = 0
    max_minutes: float | None = None  # stop (and checkpoint) after this wall time
    schedule_minutes: float | None = None  # cosine over wall time instead of iterations
    amp: bool = True          # bfloat16 autocast on CUDA


def load_bsds_training(root, split: str = "train"):
    """Read BSDS500 images and annotator consensus maps, all in landscape orientation.

    Parameters
    ----------
    root : path-like
        The ``bsds500`` folder (``data/images/<split>``, ``data/groundTruth/<split>``).
    split : str

    Returns
    -------
    images : (N, 3, H, W) torch.Tensor of float32 in [0, 1]
    consensus : (N, 1, H, W) torch.Tensor of float32 in [0, 1]
    ids : list of str
    """
    from bottomup.io import read_bsds_gt, read_image

    root = Path(root)
    img_dir = root / "data" / "images" / split
    gt_dir = root / "data" / "groundTruth" / split
    ids = sorted(p.stem for p in gt_dir.glob("*.mat"))
    if not ids:
        raise FileNotFoundError(f"no ground truth in {gt_dir}")
    imgs, cons = [], []
    for i in ids:
        img = read_image(img_dir / f"{i}.jpg").astype(np.float32)
        gt = read_bsds_gt(gt_dir / f"{i}.mat")
        c = np.mean([b.astype(np.float32) for b in gt.boundaries], axis=0)
        if img.shape[0] > img.shape[1]:  # portrait -> landscape (a rotation: fine for training)
            img = np.ascontiguousarray(np.rot90(img))
            c = np.ascontiguousarray(np.rot90(c))
        imgs.append(torch.from_numpy(img).permute(2, 0, 1))
        cons.append(torch.from_numpy(c)[None])
    shapes = {tuple(t.shape[-2:]) for t in imgs}
    if len(shapes) != 1:
        hh = min(s[0] for s in shapes)
        ww = min(s[1] for s in shapes)
        imgs = [t[..., :hh, :ww] for t in imgs]
        cons = [t[..., :hh, :ww] for t in cons]
    return torch.stack(imgs), torch.stack(cons), ids


def orientation_targets(consensus: torch.Tensor, n_orient: int = 8, sigma: float = 1.5) -> torch.Tensor:
    """Orientation bin of the boundary through each pixel, from a boundary map's structure tensor.

    Parameters
    ----------
    consensus : (N, 1, H, W) torch.Tensor
    n_orient : int
    sigma : float
        Gaussian smoothing of the map and of the tensor.

    Returns
    -------
    bins : (N, H, W) torch.Tensor of int64
        ``round(theta / (pi / n_orient)) mod n_orient`` where the edge runs along
        ``(cos theta, sin theta)`` in (row, col): theta = 0 for a vertical edge.
    """
    r = max(1, int(math.ceil(3 * sigma)))
    xs = torch.arange(-r, r + 1, device=consensus.device, dtype=consensus.dtype)
    g = torch.exp(-0.5 * (xs / sigma) ** 2)
    g = g / g.sum()

    def blur(t):
        t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
        return F.conv2d(F.pad(t, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1))

    s = blur(consensus)
    kr = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]], device=s.device, dtype=s.dtype)
    sp = F.pad(s, (1, 1, 1, 1), mode="replicate")
    gr = F.conv2d(sp, kr.view(1, 1, 3, 3))
    gc = F.conv2d(sp, kr.t().contiguous().view(1, 1, 3, 3))
    jrr, jcc, jrc = blur(gr * gr), blur(gc * gc), blur(gr * gc)
    phi = 0.5 * torch.atan2(2 * jrc, jrr - jcc)  # gradient (normal) direction in (row, col)
    theta = torch.remainder(phi + math.pi / 2, math.pi)
    return (torch.round(theta / (math.pi / n_orient)).long() % n_orient)[:, 0]


def augment_batch(images, consensus, batch_size, crop, *, scale_range=(0.7, 1.4), generator=None):
    """Random rotation, scale, flip and crop of a batch, by one affine resampling on the device.

    Parameters
    ----------
    images : (N, 3, H, W) torch.Tensor
    consensus : (N, 1, H, W) torch.Tensor
    batch_size, crop : int

    Returns
    -------
    x : (B, 3, crop, crop) images, y : (B, 1, crop, crop) consensus, valid : (B, 1, crop, crop) bool
    """
    dev = images.device
    n, _, h, w = images.shape
    idx = torch.randint(0, n, (batch_size,), generator=generator, device="cpu").to(dev)
    rnd = torch.rand(batch_size, 5, generator=generator, device="cpu").to(dev)
    angle = (rnd[:, 0] * 2 - 1) * math.pi
    lo, hi = scale_range
    scale = lo * (hi / lo) ** rnd[:, 1]  # log-uniform; > 1 zooms in
    flip = torch.where(rnd[:, 2] < 0.5, -1.0, 1.0)
    # Output crop coordinates (x, y) in [-1, 1] map to input normalised coordinates: rotate the
    # pixel offset (flipped in x) by `angle`, shrink it by `scale`, then normalise by the input's
    # half width / half height.
    cos, sin = torch.cos(angle), torch.sin(angle)
    kx = crop / (w * scale)
    ky = crop / (h * scale)
    theta = torch.zeros(batch_size, 2, 3, device=dev)
    theta[:, 0, 0] = cos * kx * flip
    theta[:, 0, 1] = -sin * kx
    theta[:, 1, 0] = sin * ky * flip
    theta[:, 1, 1] = cos * ky
    theta[:, 0, 2] = (rnd[:, 3] * 2 - 1) * 0.6
    theta[:, 1, 2] = (rnd[:, 4] * 2 - 1) * 0.6
    grid = F.affine_grid(theta, (batch_size, 1, crop, crop), align_corners=False)
    x = F.grid_sample(images[idx], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = F.grid_sample(consensus[idx], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ones = torch.ones(batch_size, 1, h, w, device=dev)
    valid = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.999
    return x, y, valid


def balanced_bce(logits, consensus, valid, *, eta=0.3, lam=1.1):
    """Class-balanced binary cross-entropy of RCF on annotator consensus.

    Parameters
    ----------
    logits, consensus : (N, 1, H, W) torch.Tensor
    valid : (N, 1, H, W) bool torch.Tensor
        Pixels inside the image.
    eta : float
        Consensus for a positive; pixels with ``0 < consensus < eta`` are ignored.
    lam : float
        Extra weight of negatives.

    Returns
    -------
    loss : torch.Tensor
        Mean over images of the weighted sum over pixels divided by the number of counted pixels.
    """
    pos = (consensus >= eta) & valid
    neg = (consensus <= 1e-3) & valid
    dims = (1, 2, 3)
    n_pos = pos.sum(dims, keepdim=True).float()
    n_neg = neg.sum(dims, keepdim=True).float()
    tot = (n_pos + n_neg).clamp_min(1.0)
    w = torch.where(pos, n_neg / tot, torch.where(neg, lam * n_pos / tot, torch.zeros_like(logits)))
    target = pos.float()
    bce = F.binary_cross_entropy_with_logits(logits.float(), target, weight=w, reduction="none")
    return (bce.sum(dims) / tot.view(-1)).mean()


def _normalise(x):
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _save_atomic(obj, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _freeze_bn(module):
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def train(net, images, consensus, config: TrainConfig, *, checkpoint: str | os.PathLike,
          device="cpu", log=print) -> dict:
    """Train (or resume training of) a contour network.

    Parameters
    ----------
    net : ContourNet
    images : (N, 3, H, W) torch.Tensor in [0, 1]
    consensus : (N, 1, H, W) torch.Tensor in [0, 1]
    config : TrainConfig
    checkpoint : path-like
        Written every ``config.checkpoint_every`` iterations and at the end (atomically); if it
        exists, training resumes from it.
    device : str or torch.device
    log : callable
        Receives progress lines.

    Returns
    -------
    history : dict
        ``iterations``, ``seconds``, ``losses`` (mean per 50 iterations), ``device``, ``config``.

    Notes
    -----
    With ``config.schedule_minutes`` set, the cosine decay runs over that much training wall time
    (resumes included) and training stops when it is spent, ``config.iterations`` then being only
    an upper bound: a run on a shared or unknown device still ends with its learning rate decayed
    to zero. The iteration count reached is in the history and the checkpoint.
    """
    checkpoint = Path(checkpoint)
    device = torch.device(device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    net = net.to(device)
    head = [p for n, p in net.named_parameters() if not n.startswith("backbone.")]
    back = [p for n, p in net.named_parameters() if n.startswith("backbone.")]
    opt = torch.optim.AdamW([{"params": head, "lr": config.lr},
                             {"params": back, "lr": config.lr_backbone}],
                            weight_decay=config.weight_decay)
    start, losses, seconds = 0, [], 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        start, losses, seconds = state["iteration"], state["losses"], state["seconds"]
        gen.set_state(state["generator"])
        log(f"resumed from {checkpoint} at iteration {start}")
    base_lrs = [g["lr"] for g in opt.param_groups]
    images = images.to(device)
    consensus = consensus.to(device)
    use_amp = config.amp and device.type == "cuda"
    t0 = time.perf_counter()
    it = start

    def save():
        _save_atomic({"model": net.state_dict(), "optim": opt.state_dict(), "iteration": it,
                      "losses": losses, "seconds": seconds + time.perf_counter() - t0,
                      "generator": gen.get_state(), "config": asdict(config)}, checkpoint)

    net.train()
    _freeze_bn(net.backbone)
    timed = config.schedule_minutes is not None
    budget = 60.0 * config.schedule_minutes if timed else None
    running = torch.zeros((), device=device)
    n_running = 0
    while it < config.iterations:
        # cosine decay after a short warm-up, over iterations or over training wall time
        if timed:
            frac = (seconds + time.perf_counter() - t0) / budget
            if frac >= 1.0:
                break
        else:
            frac = it / max(1, config.iterations)
        scale = min(1.0, (it + 1) / max(1, config.warmup)) * 0.5 * (1 + math.cos(math.pi * frac))
        for g, b in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = b * scale
        x, y, valid = augment_batch(images, consensus, config.batch_size, config.crop,
                                    scale_range=config.scale_range, generator=gen)
        with torch.no_grad():
            obins = orientation_targets(y, config.n_orient)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = net(_normalise(x))
        loss = balanced_bce(out["fused"], y, valid, eta=config.eta, lam=config.lam)
        for s in out["sides"]:
            loss = loss + config.side_weight * balanced_bce(s, y, valid, eta=config.eta, lam=config.lam)
        # orientation cross-entropy averaged over positive pixels (none: no term), computed
        # without a host synchronisation so the device queue stays full
        pos = ((y >= config.eta) & valid)[:, 0].float()
        ce = F.cross_entropy(out["orient"].float(), obins, reduction="none")
        loss = loss + config.orient_weight * (ce * pos).sum() / pos.sum().clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += loss.detach()
        n_running += 1
        it += 1
        if it % 50 == 0:
            losses.append(float(running) / n_running)
            running.zero_()
            n_running = 0
            el = seconds + time.perf_counter() - t0
            log(f"iter {it}/{config.iterations} loss {losses[-1]:.4f} {el:.0f}s")
        if it % config.checkpoint_every == 0:
            save()
        if config.max_minutes is not None and time.perf_counter() - t0 > 60 * config.max_minutes:
            log(f"time budget reached at iteration {it}")
            break
    save()
    net.eval()
    return {"iterations": it, "seconds": seconds + time.perf_counter() - t0, "losses": losses,
            "device": str(device), "config": asdict(config)}


def export_weights(checkpoint, out_path) -> int:
    """Write the model of a training checkpoint as a float16 state dict (the shipped file).

    Returns
    -------
    n_bytes : int
        Size of the written file.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()}
    _save_atomic({"model": model, "iteration": state["iteration"], "config": state.get("config")},
                 Path(out_path))
    return Path(out_path).stat().st_size
