"""Training of the deep heads (pixel classifier, region scorer, mask refiner) on a dataset layout.

Everything runs from caches in a work folder, so an interrupted run resumes: backbone taps per
image (``taps/<name>.pt``), proposals per image (``props/<name>.npz``, each with the cache key of
its settings, image, ranker and code: :func:`proposals_key`), and one checkpoint per
stage (``<stage>.ckpt``, written atomically after every epoch, holding the model, the optimiser
and the epoch reached). Rerunning skips finished images and epochs.

Stages (all on frozen ImageNet EfficientNet-Lite0 hypercolumns, as :mod:`deep.scoring` and
:mod:`deep.refine` describe):

1. ``pixel``: :class:`deep.scoring.PixelClassifier` on pixels sampled from the half-resolution
   grid of every training image (void excluded).
2. ``scorer``: :class:`deep.scoring.RegionScorer` on the descriptors of the proposals, with targets
   from :func:`deep.scoring.candidate_targets` (class at IoU >= 0.5, best IoU, class histogram).
3. ``refiner``: :class:`deep.refine.MaskRefiner` on proposals that overlap an instance by at least
   0.5, the instance's mask as target (void pixels ignored).

:func:`train_maskrcnn` trains :class:`deep.models.MaskRCNN` end to end (backbone partly) on the
same layout, with one checkpoint ``maskrcnn.ckpt`` in the work folder (``bench/maskrcnn.py``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import VOID, SegmentationDataset
from .refine import MaskRefiner, expand_boxes
from .scoring import PixelClassifier, RegionScorer, candidate_targets, dense_hypercolumns, region_descriptors
from .segmenter import backbone_taps

__all__ = ["cache_proposals", "cache_taps", "load_proposals", "load_taps", "maskrcnn_lr", "maskrcnn_sample",
           "proposals_key", "save_proposals", "stored_key", "train_heads", "train_maskrcnn"]

def _save_atomic(obj, path: Path) -> None:
    from bottomup.io.files import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def cache_taps(ds: SegmentationDataset, work, backbone=None, progress=print) -> None:
    """Backbone taps (strides 4, 8, 16, 32) of every image as float16, ``work/taps/<name>.pt``."""
    if backbone is None:
        from .backbone.efficientnet import efficientnet_lite0

        backbone = efficientnet_lite0(pretrained=True).eval()
    out = Path(work) / "taps"
    out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(ds.names):
        p = out / f"{name}.pt"
        if p.is_file():
            continue
        from bottomup.io import read_image

        taps = backbone_taps(backbone, read_image(ds.image_path(name)))
        _save_atomic([t.half() for t in taps], p)
        if progress and i % 50 == 0:
            progress(f"taps {i + 1}/{len(ds)}")


def load_taps(work, name: str):
    return [t.float() for t in torch.load(Path(work) / "taps" / f"{name}.pt")]


def proposals_key(image_path, *, n: int = 1000, preset: str = "scg", owt: str | None = None) -> str:
    """Cache key of the proposals of the heads' ``preset`` and ``owt`` for an image.

    :func:`bottomup.io.cache_key` of the parameters (the method and the contour source's spec,
    :func:`bottomup.mcg.propose.legacy_preset`), the image file's content, the shipped ranker
    file those settings use and the code of ``bottomup``.

    Parameters
    ----------
    image_path : path-like
    n : int
        Proposals per image.
    preset, owt
        As saved with the heads (:class:`deep.segmenter.DeepSegmenter`).

    Returns
    -------
    key : str
        24 hex digits.
    """
    from bottomup.io import cache_key
    from bottomup.mcg.propose import legacy_preset
    from bottomup.mcg.ranking import ranker_path

    method, source = legacy_preset(preset, owt)
    return cache_key("proposals", params={"n": int(n), "method": method, "source": source.spec()},
                     files=[image_path, ranker_path(method, source.ranker)], code=["bottomup"])


def stored_key(path) -> str | None:
    """The cache key a proposals file was saved with (None: none, or an unreadable file)."""
    import zipfile

    try:
        with np.load(path) as z:
            return str(z["key"]) if "key" in z.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _one_proposal(args):
    path, out, n, preset, owt = args
    key = proposals_key(path, n=n, preset=preset, owt=owt)
    if out.is_file() and stored_key(out) == key:
        return 0.0
    from bottomup.io import read_image
    from bottomup.mcg import proposals
    from bottomup.mcg.propose import legacy_preset

    t = time.perf_counter()
    method, source = legacy_preset(preset, owt)  # the settings the heads were trained with
    c = proposals(read_image(path), n=n, method=method, contours=source)
    dt = time.perf_counter() - t
    save_proposals(out, c, key=key)
    return dt


def save_proposals(path, c, *, key: str | None = None) -> None:
    """Write ``bottomup.mcg.Candidates`` compactly (bit-packed leaf sets), atomically, with the
    cache ``key`` they were computed under (:func:`proposals_key`), if any."""
    from bottomup.io.files import atomic_path

    extra = {} if key is None else {"key": np.array(key)}
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, leaf_labels=c.leaf_labels, leaf_sets=np.packbits(c.leaf_sets, axis=1),
                            n_leaves=c.leaf_sets.shape[1], boxes=c.boxes, scores=c.scores, **extra)


def cache_proposals(ds: SegmentationDataset, work, n: int = 1000, preset: str = "scg", workers: int = 1,
                    progress=print, owt: str | None = None) -> None:
    """Proposals of every image (``bottomup.mcg.proposals``), ``work/props/<name>.npz``.

    A file is reused only if it was saved under the same :func:`proposals_key` (the settings,
    the image, the ranker file, the code); otherwise it is recomputed and replaced, so another
    ``n``, ``preset`` or ``owt``, a retrained ranker or changed code never reuses old proposals.
    """
    out = Path(work) / "props"
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(ds.image_path(nm), out / f"{nm}.npz", n, preset, owt) for nm in ds.names]
    from bottomup.jobs import map_unordered

    report = (lambda i, total: progress(f"proposals {i}/{total}")) if progress else None
    for _ in map_unordered(_one_proposal, jobs, workers, progress=report, every=50):
        pass


def load_proposals(work, name: str):
    """``bottomup.mcg.Candidates`` of a cached image."""
    from bottomup.mcg import Candidates

    z = np.load(Path(work) / "props" / f"{name}.npz")
    sets = np.unpackbits(z["leaf_sets"], axis=1, count=int(z["n_leaves"])).astype(bool)
    return Candidates(z["leaf_labels"], sets, z["boxes"], z["scores"])


def _ckpt(ckpt_dir, stage):
    p = Path(ckpt_dir) / f"{stage}.ckpt"
    return torch.load(p, weights_only=False) if p.is_file() else None


def _train_loop(stage, ckpt_dir, model, batches_fn, epochs, lr, progress, weight_decay=1e-5):
    """Adam over ``epochs``; checkpoint ``ckpt_dir/<stage>.ckpt`` after each; resume from the last one."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    start = 0
    ck = _ckpt(ckpt_dir, stage)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start = ck["epoch"]
        if progress and start < epochs:
            progress(f"{stage}: resuming after epoch {start}")
    for epoch in range(start, epochs):
        model.train()
        total, count = 0.0, 0
        for loss in batches_fn(epoch, model):
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            count += 1
        sched.step()
        _save_atomic({"model": model.state_dict(), "opt": opt.state_dict(),
                      "sched": sched.state_dict(), "epoch": epoch + 1}, Path(ckpt_dir) / f"{stage}.ckpt")
        if progress:
            progress(f"{stage}: epoch {epoch + 1}/{epochs} loss {total / max(count, 1):.4f}")
    model.eval()
    return model


def train_heads(ds: SegmentationDataset, work, *, pixel_epochs: int = 12, scorer_epochs: int = 30,
                refiner_epochs: int = 8, pixels_per_image: int = 2000, regions_per_image: int = 400,
                refine_per_image: int = 16, seed: int = 0, progress=print, ckpt_dir=None) -> dict:
    """Train the three heads on ``ds`` (its taps and proposals cached in ``work``).

    The stage checkpoints go to ``ckpt_dir`` (default ``work``), so several trainings on subsets
    of one cached pool (the folds of a cross-validation) share the caches and keep their own
    checkpoints.

    Returns
    -------
    dict
        ``{"pixel": PixelClassifier, "scorer": RegionScorer, "refiner": MaskRefiner, "times": {...}}``
        in eval mode.
    """
    from bottomup.masks import boxes_to_xyxy

    ckpt_dir = Path(work if ckpt_dir is None else ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_classes = len(ds.classes)
    times = {}

    # ---- stage 1: per-pixel classifier ------------------------------------------------------
    t0 = time.perf_counter()
    xs, ys = [], []
    for name, sample in zip(ds.names, ds, strict=False):
        taps = load_taps(work, name)
        dense = dense_hypercolumns(taps, sample.labels.shape)[0]
        lab = sample.labels[::2, ::2].reshape(-1)
        ok = np.flatnonzero(lab != VOID)
        pick = rng.choice(ok, size=min(pixels_per_image, ok.size), replace=False)
        xs.append(dense.reshape(dense.shape[0], -1)[:, torch.from_numpy(pick)].T)
        ys.append(torch.from_numpy(lab[pick].astype(np.int64)))
    x_pix, y_pix = torch.cat(xs), torch.cat(ys)
    pixel = PixelClassifier(x_pix.shape[1], n_classes)
    pixel.set_normalisation(x_pix)

    def pixel_batches(epoch, model):
        perm = torch.randperm(len(y_pix), generator=torch.Generator().manual_seed(seed + epoch))
        for k in range(0, len(perm), 2048):
            idx = perm[k:k + 2048]
            yield F.cross_entropy(model(x_pix[idx]), y_pix[idx])

    _train_loop("pixel", ckpt_dir, pixel, pixel_batches, pixel_epochs, 1e-3, progress)
    times["pixel"] = time.perf_counter() - t0
    xs = ys = x_pix = y_pix = None  # free the samples before the next stage

    # ---- stage 2: region scorer ----------------------------------------------------------------
    t0 = time.perf_counter()
    feats, cls_t, iou_t, hist_t, refine_items = [], [], [], [], []
    for name, sample in zip(ds.names, ds, strict=False):
        taps = load_taps(work, name)
        cands = load_proposals(work, name)
        if len(cands) == 0:
            continue
        dense = dense_hypercolumns(taps, sample.labels.shape)
        with torch.no_grad():
            d = region_descriptors(dense, cands.leaf_labels, cands.leaf_sets, cands.boxes, cands.scores)
        masks = cands.masks()
        cls, ov, hist, best = candidate_targets(masks, sample.masks, sample.classes, sample.labels,
                                                n_classes)
        pos = np.flatnonzero(cls < n_classes)
        neg = np.flatnonzero(cls == n_classes)
        take = np.concatenate([pos[:regions_per_image // 2],
                               rng.choice(neg, size=min(neg.size, regions_per_image - min(pos.size,
                                          regions_per_image // 2)), replace=False)])
        feats.append(d[torch.from_numpy(take)].half())
        cls_t.append(torch.from_numpy(cls[take]))
        iou_t.append(torch.from_numpy(ov[take]))
        hist_t.append(torch.from_numpy(hist[take]))
        # refiner examples: candidates overlapping an instance by >= 0.5, several instances
        good = np.flatnonzero(ov >= 0.5)
        if good.size:
            sel = rng.choice(good, size=min(refine_per_image, good.size), replace=False)
            refine_items.append((name, cands.boxes[sel], masks[sel], sample.masks[best[sel]],
                                 sample.labels == VOID))
    x_reg = torch.cat(feats).float()
    y_cls, y_iou, y_hist = torch.cat(cls_t), torch.cat(iou_t), torch.cat(hist_t)
    scorer = RegionScorer(x_reg.shape[1], n_classes)
    scorer.set_normalisation(x_reg)
    has_hist = y_hist.sum(1) > 0

    def scorer_batches(epoch, model):
        perm = torch.randperm(len(y_cls), generator=torch.Generator().manual_seed(seed + epoch))
        for k in range(0, len(perm), 512):
            idx = perm[k:k + 512]
            logits, iou, hist = model(x_reg[idx])
            h_ok = has_hist[idx]
            loss = F.cross_entropy(logits, y_cls[idx]) + 2.0 * F.mse_loss(iou, y_iou[idx])
            if h_ok.any():
                loss = loss - (y_hist[idx][h_ok] * F.log_softmax(hist[h_ok], 1)).sum(1).mean()
            yield loss

    _train_loop("scorer", ckpt_dir, scorer, scorer_batches, scorer_epochs, 1e-3, progress, weight_decay=1e-4)
    times["scorer"] = time.perf_counter() - t0
    feats = x_reg = None

    # ---- stage 3: mask refiner -----------------------------------------------------------------
    t0 = time.perf_counter()
    refiner = MaskRefiner([t.shape[1] for t in load_taps(work, ds.names[0])])
    tap_cache = {name: load_taps(work, name) for name, *_ in refine_items}

    def refiner_batches(epoch, model):
        order = np.random.default_rng(seed + epoch).permutation(len(refine_items))
        for i in order:
            name, boxes_rc, cmask, gmask, void = refine_items[i]
            taps = tap_cache[name]
            h, w = void.shape
            flip = (epoch + i) % 2 == 1
            if flip:  # horizontal flip augmentation
                taps = [t.flip(-1) for t in taps]
                cmask, gmask, void = cmask[..., ::-1], gmask[..., ::-1], void[..., ::-1]
                boxes_rc = np.stack([boxes_rc[:, 0], w - boxes_rc[:, 3], boxes_rc[:, 2],
                                     w - boxes_rc[:, 1]], 1)
            xy = boxes_to_xyxy(boxes_rc)
            xy[:, 2:] += 1  # continuous box over the last pixel
            b = torch.as_tensor(xy, dtype=torch.float32)
            b = expand_boxes(b, (h, w))
            cm = torch.from_numpy(np.ascontiguousarray(cmask))
            logits = model(taps, b, cm, (h, w))
            k = len(b)
            rois = torch.cat([torch.arange(k, dtype=torch.float32)[:, None], b], 1)
            from .ops.roi import roi_align

            tgt = roi_align(torch.from_numpy(np.ascontiguousarray(gmask)).float()[:, None], rois,
                            model.size, sampling_ratio=2, aligned=True)[:, 0]
            vd = roi_align(torch.from_numpy(np.ascontiguousarray(void)).float()[None, None].expand(
                k, 1, h, w), rois, model.size, sampling_ratio=2, aligned=True)[:, 0]
            wgt = (vd < 0.5).float()
            yield (F.binary_cross_entropy_with_logits(logits, (tgt >= 0.5).float(), reduction="none")
                   * wgt).sum() / wgt.sum().clamp(min=1.0)

    _train_loop("refiner", ckpt_dir, refiner, refiner_batches, refiner_epochs, 1e-3, progress)
    times["refiner"] = time.perf_counter() - t0
    return {"pixel": pixel, "scorer": scorer, "refiner": refiner, "times": times}



# ---- Mask R-CNN -----------------------------------------------------------------------------


def maskrcnn_sample(sample, things, *, flip: bool = False, proposals=None, mask_prior: bool = False):
    """One :class:`deep.data.Sample` as Mask R-CNN input: image tensor, target dict, proposals.

    Parameters
    ----------
    sample : deep.data.Sample
    things : sequence of int
        Dataset class ids that are detected; class ``things[j]`` becomes label ``j + 1``
        (0 is background, torchvision's convention). Other instances and crowd ones are dropped.
    flip : bool
        Mirror left to right (image, masks, boxes, proposals).
    proposals : bottomup.mcg.Candidates, optional
        Bottom-up RoIs of the image (``rois="external"``), with their masks if ``mask_prior``.

    Returns
    -------
    image : (3, H, W) torch.Tensor of float32 in [0, 1]
    target : dict
        ``boxes (G, 4)`` float32 xyxy, ``labels (G,)`` int64, ``masks (G, H, W)`` bool.
    proposals : dict or None
        ``{"boxes", ["masks"]}`` as :func:`deep.models.maskrcnn.candidates_to_proposals`.
    """
    from .models.maskrcnn import candidates_to_proposals, masks_to_xyxy

    lut = {int(c): j + 1 for j, c in enumerate(things)}
    sel = np.array([j for j, (c, cr) in enumerate(zip(sample.classes, sample.crowd, strict=True))
                    if int(c) in lut and not cr and sample.masks[j].any()], np.int64)
    masks = sample.masks[sel]
    labels = [lut[int(sample.classes[j])] for j in sel]
    image = sample.image
    if flip:
        image, masks = image[:, ::-1], masks[..., ::-1]
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    m = torch.from_numpy(np.ascontiguousarray(masks)).bool()
    target = {"boxes": masks_to_xyxy(m), "labels": torch.as_tensor(labels, dtype=torch.int64), "masks": m}
    props = None
    if proposals is not None:
        props = candidates_to_proposals(proposals, with_masks=mask_prior)
        if flip:
            w = image.shape[1]
            b = props["boxes"]
            props["boxes"] = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
            if "masks" in props:
                props["masks"] = props["masks"].flip(-1)
    return img, target, props


def maskrcnn_lr(it: int, iterations: int, lr: float, warmup: int) -> float:
    """Learning rate of iteration ``it``: linear warm-up from ``lr / 10``, then x0.1 at 2/3 and
    8/9 of the run (the Detectron schedule, as a pure function of ``it``, so a resumed run needs no
    scheduler state)."""
    if it < warmup:
        return lr * (0.1 + 0.9 * it / warmup)
    return lr * (0.1 ** ((it >= 2 * iterations // 3) + (it >= 8 * iterations // 9)))


def train_maskrcnn(model, ds: SegmentationDataset, work, *, iterations: int, batch_size: int = 2,
                   lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 1e-4, warmup: int = 100,
                   clip: float = 10.0, checkpoint_every: int = 50, things=None, seed: int = 0,
                   device=None, max_seconds: float | None = None, progress=print) -> dict:
    """Train :class:`deep.models.MaskRCNN` on a dataset in the layout; resumable.

    Parameters
    ----------
    model : deep.models.MaskRCNN
        Its ``num_classes`` must be ``len(things) + 1``. With ``rois="external"`` the proposals
        come from ``work/props`` (:func:`cache_proposals`).
    ds : deep.data.SegmentationDataset
    work : path-like
        Holds ``maskrcnn.ckpt`` (model, optimiser, iteration, RNG state, loss history), written
        atomically every ``checkpoint_every`` iterations and at the end. A second call with the
        same arguments continues from it (to a larger ``iterations`` too).
    iterations : int
        Total SGD steps (of ``batch_size`` images each).
    lr, momentum, weight_decay, warmup, clip : float
        SGD; :func:`maskrcnn_lr` schedule; gradient norm clipped at ``clip``.
    things : sequence of int, optional
        Class ids to detect (default ``ds.things``).
    seed : int
        Image order (a permutation per epoch) and flips are functions of ``(seed, iteration)``.
    device : torch.device, optional
        Default: CUDA when available.
    max_seconds : float, optional
        Stop (with a checkpoint) after this much wall time; the next call goes on.

    Returns
    -------
    dict
        ``iteration`` reached, ``history`` (one dict per iteration, all runs: the losses, wall
        ``seconds`` and ``cpu_seconds`` of the process, all threads), ``seconds`` of this call.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    things = tuple(ds.things if things is None else things)
    if model.num_classes != len(things) + 1:
        raise ValueError(f"`model.num_classes` ({model.num_classes}) must be len(things) + 1 "
                         f"({len(things) + 1})")
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    path = work / "maskrcnn.ckpt"
    start, history = 0, []
    if path.is_file():
        ck = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        torch.set_rng_state(ck["rng"])
        start, history = ck["iteration"], ck["history"]
        if progress and start < iterations:
            progress(f"maskrcnn: resuming after iteration {start}")

    def save(it):
        from .models.maskrcnn import save_maskrcnn

        save_maskrcnn(path, model, things=things, classes=ds.classes, iteration=it, opt=opt.state_dict(),
                      rng=torch.get_rng_state(), history=history)

    n = len(ds)
    t_start = time.perf_counter()
    model.train()
    it = start
    while it < iterations:
        t0, c0 = time.perf_counter(), time.process_time()
        images, targets, props = [], [], []
        for b in range(batch_size):
            k = it * batch_size + b
            order = np.random.default_rng([seed, k // n]).permutation(n)
            i = int(order[k % n])
            flip = bool(np.random.default_rng([seed, k, 1]).integers(2))
            cands = load_proposals(work, ds.names[i]) if model.rois == "external" else None
            img, tgt, pr = maskrcnn_sample(ds[i], things, flip=flip, proposals=cands,
                                           mask_prior=model.mask_prior)
            images.append(img.to(device))
            targets.append({k2: v.to(device) for k2, v in tgt.items()})
            props.append(None if pr is None else {k2: v.to(device) for k2, v in pr.items()})
        for g in opt.param_groups:
            g["lr"] = maskrcnn_lr(it, iterations, lr, warmup)
        losses = model(images, targets, props if model.rois == "external" else None)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        it += 1
        history.append({**{k2: float(v.detach()) for k2, v in losses.items()}, "loss": float(loss.detach()),
                        "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                        "iteration": it})
        if progress and (it % 10 == 0 or it == iterations):
            recent = history[-10:]
            progress(f"maskrcnn: iteration {it}/{iterations} loss "
                     f"{np.mean([h['loss'] for h in recent]):.4f} "
                     f"({np.mean([h['seconds'] for h in recent]):.2f} s/it)")
        out_of_time = max_seconds is not None and time.perf_counter() - t_start >= max_seconds
        if it % checkpoint_every == 0 or it == iterations or out_of_time:
            save(it)
        if out_of_time:
            break
    if it == start and not path.is_file():
        save(it)
    model.eval()
    return {"iteration": it, "history": history, "seconds": time.perf_counter() - t_start}
