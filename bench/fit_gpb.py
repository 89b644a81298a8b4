"""Refit gPb's globalisation weights (12 cues + sPb) on BSDS500 train, at the level of the arcs.

gPb is linear in its weights: ``g[o] = sum_c w_c smooth(cue_c)[o] + w_s sPb[o]``, and the OWT-UCM
merges regions by the mean of ``g`` along their common boundary, read in each piece's orientation
channel. So the strength of every arc of the finest partition is ``w . F``, with ``F`` the mean
over the arc of the 13 channels, each read as the arc's strength is. This script

``cache``: for every train image, computes gPb (``GPb()``'s ``quality`` preset, one scale, seed 0)
channel by channel, its oriented watershed with the release weights, and for each arc ``F``
(13 columns), its length and its target (the share of human segmentations that separate its two
regions, ``bottomup.owt.arc_scores.region_pair_targets``); one ``.npz`` per image, written
atomically, so an interrupted run resumes.

``fit``: on the arcs of all images but every ``--hold-every``-th, either (``--method auc``, the
default) coordinate ascent from the release weights on the length-weighted ranking AUC of the arc
strengths (what the hierarchy orders by; the release fitted its weights by gradient ascent on the
F-measure of BSDS300 train, Arbelaez et al. 2011, Sec. 3.3), or (``--method logistic``) the
length-weighted logistic regression ``P(boundary) = sigmoid(u . F + b)``, ``u >= 0`` (L-BFGS-B).
The fitted direction is scaled so the length-weighted mean strength of the training arcs equals
the release's (the strengths keep the range the UCM sigmoid and the [0, 1] clip expect); the AUC
and the cross-entropy (best affine link) of the fit and held-out arcs are printed beside the
release's. mPb's weights (sPb's input) are kept. Figures: docs/results.md.

    python bench/fit_gpb.py cache --root $BOTTOMUP_DATA/bsds500 --cache C --workers 2
    python bench/fit_gpb.py fit --cache C [--method auc|logistic] [--hold-every 10] [--json OUT.json]
    python bench/fit_gpb.py segment --weights OUT.json|release --split val --out DIR --workers 2
    python bench/bsds.py --pred DIR --gt $BOTTOMUP_DATA/bsds500/data/groundTruth/val --workers 2

``segment`` writes the default two-scale hierarchy (``bottomup.segment`` with :func:`weighted_source`,
``GPb()``'s policy) of every image of the split under the given weights.

``probe`` (needs ``deep``) fits the arc scorer of ``arcs="gpb"`` with and without the 13 channel
means as extra features, on the arcs both caches hold, and prints the held-out cross-entropy and
AUC of each: does a nonlinear use of the channels pay where a linear one does not?

    python bench/fit_gpb.py probe --cache C --arcs-cache A   # A: bench/train_arcs.py --contours gpb --cache A
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bottomup.cues.color import is_gray
from bottomup.jobs import map_unordered, stderr_counter

CHANNELS = ("L3", "L5", "L10", "a5", "a10", "a20", "b5", "b10", "b20", "T5", "T10", "T20", "sPb")


def channels(img, preset: str = "quality", seed: int = 0):
    """The 13 smoothed channels of gPb, each (O, H, W) float32, and the release gPb (clipped).

    ``feats`` (13, O, H, W) float32: the parabola-smoothed cues in the order of :data:`CHANNELS`,
    then sPb (of mPb with the release weights), as ``bottomup.contours.gpb`` computes them for a
    colour image; ``g`` (O, H, W) float64 is :func:`weighted_gpb` of the release weights, equal to
    ``GPb(preset, seed, multiscale=False).contours(img)[1]`` up to float32 rounding.
    """
    from bottomup.contours.gpb import PRESETS
    from bottomup.contours.mpb import GPB_WEIGHTS_COLOR, MPB_WEIGHTS_COLOR, mpb, mpb_nmax
    from bottomup.contours.spectral import spb
    from bottomup.cues.gradients import local_cues
    from bottomup.cues.smoothing import parabola_smooth

    cfg = PRESETS[preset]
    h, w = img.shape[:2]
    cues = local_cues(img, n_textons=cfg["n_textons"], steps=cfg["steps"], texton_sigmas=cfg["texton_sigmas"],
                      radii_l=cfg["radii_l"], radii_ab=cfg["radii_ab"], radii_t=cfg["radii_t"],
                      texton_coarse_to_fine=cfg.get("texton_coarse_to_fine", False),
                      rng=np.random.default_rng(seed))
    n_levels = max(cfg["n_levels"], int(np.ceil(np.log(max(h * w / 12_000, 1.0)) / np.log(4.0))))
    s = spb(mpb_nmax(mpb(cues, MPB_WEIGHTS_COLOR)), n_vec=cfg["n_vec"], n_levels=n_levels,
            radius=cfg["ic_radius"])
    feats = np.stack([parabola_smooth(cues.stack[c], cues.radii[c]) for c in range(len(cues.names))]
                     + [s.astype(np.float32)])
    return feats, weighted_gpb(feats, GPB_WEIGHTS_COLOR)


def weighted_gpb(feats, weights):
    """gPb of the channels ``feats`` (13, O, H, W) under 13 ``weights``: (O, H, W) float64 in [0, 1]."""
    w = np.asarray(weights, np.float32)
    if w.shape != (len(CHANNELS),):
        raise ValueError(f"`weights` must hold {len(CHANNELS)} values ({', '.join(CHANNELS)}), got {w.shape}")
    return np.clip(np.tensordot(w, feats, axes=1), 0.0, 1.0).astype(np.float64)


def weighted_source(weights):
    """``GPb()`` (the default two-scale source and its policy) with these globalisation weights.

    Colour images only take ``weights``; gray ones keep gPb's gray weights, as ``GPb()`` does.
    ``bottomup.segment(image, contours=weighted_source(GPB_WEIGHTS_COLOR))`` is ``segment(image)``
    up to float32 rounding.
    """
    from bottomup.contours import GPb

    base = GPb()
    single = base.single_scale()
    weights = tuple(float(v) for v in weights)

    def fn(image):
        if is_gray(image):
            return single.contours(image)
        g = weighted_gpb(channels(image, base.preset, base.seed)[0], weights)
        return g.max(axis=0), g

    return base.with_policy(fn=fn, name="gpb-weights")


def image_arcs(image_path: str, gt_path: str):
    """``(F, y, length)`` of one image's arcs under the release weights (see the module doc)."""
    from bottomup.io import read_bsds_gt, read_image
    from bottomup.owt import oriented_watershed
    from bottomup.owt.arc_scores import region_pair_targets

    img = read_image(image_path)
    if is_gray(img):
        return None  # gray images take gPb's gray weights: not part of this fit
    feats, g = channels(img)
    labels, pieces = oriented_watershed(g.max(axis=0), g, descent_first=True)
    f, pairs, length = arc_means(feats, g, labels, pieces)
    y = region_pair_targets(labels, pairs, read_bsds_gt(gt_path).segmentations)
    return f, y, length


def arc_means(feats, g, labels, pieces):
    """``(F, pairs, length)``: the mean of each channel over each arc, read as the arc strengths are.

    A face's strength is the larger of its two pixels in its piece's channel of ``g``
    (:func:`bottomup.owt.oriented_watershed`); each channel is read at that pixel and channel, so
    ``F @ weights`` is the arc's mean strength wherever ``g`` was not clipped.
    """
    i0, j0, i1, j1 = pieces.face_pixels()
    ch = pieces.piece_channel[pieces.face_piece] % g.shape[0]
    first = g[ch, i0, j0] >= g[ch, i1, j1]
    fi, fj = np.where(first, i0, i1), np.where(first, j0, j1)
    face_f = feats[:, ch, fi, fj].T.astype(np.float64)  # (M, 13)
    inv, pairs = pieces.region_pairs(labels)
    n = len(pairs)
    length = np.bincount(inv, minlength=n).astype(np.float64)
    f = np.stack([np.bincount(inv, weights=face_f[:, c], minlength=n) for c in range(face_f.shape[1])], 1)
    return f / length[:, None], pairs, length


def _cache_one(job):
    image_path, gt_path, out = job
    if os.path.exists(out):
        return out
    res = image_arcs(image_path, gt_path)
    tmp = out + ".tmp.npz"
    if res is None:
        np.savez(tmp, gray=np.array(True))
    else:
        np.savez(tmp, f=res[0], y=res[1], w=res[2])
    os.replace(tmp, out)
    return out


def cmd_cache(args) -> int:
    root = Path(args.root)
    img_dir, gt_dir = root / "data" / "images" / args.split, root / "data" / "groundTruth" / args.split
    if not img_dir.is_dir() or not gt_dir.is_dir():
        raise SystemExit(f"--root must hold data/images/{args.split} and data/groundTruth/{args.split}, "
                         f"got {root}")
    names = sorted(f.stem for f in img_dir.glob("*.jpg") if (gt_dir / f"{f.stem}.mat").exists())
    if args.max_images:
        names = names[:args.max_images]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    jobs = [(str(img_dir / f"{n}.jpg"), str(gt_dir / f"{n}.mat"), str(cache / f"{args.split}_{n}.npz"))
            for n in names]
    _run(_cache_one, jobs, args.workers, "arcs")
    return 0


def _load(cache: Path, split: str):
    files = sorted(cache.glob(f"{split}_*.npz"))
    if not files:
        raise SystemExit(f"no cached arcs {split}_*.npz in {cache}: run `cache` first")
    out = []
    for p in files:
        with np.load(p) as d:
            if "gray" not in d.files:
                out.append((p.stem, d["f"], d["y"], d["w"]))
    return out


def weighted_auc(score, y, w) -> float:
    """Area under the ROC curve with soft labels: positives weigh ``w y``, negatives ``w (1 - y)``."""
    order = np.argsort(score, kind="stable")
    s, pos, neg = score[order], (w * y)[order], (w * (1 - y))[order]
    # ties: a positive beats the negatives below it and half of those tied with it
    _, start, counts = np.unique(s, return_index=True, return_counts=True)
    neg_group = np.add.reduceat(neg, start)
    pos_group = np.add.reduceat(pos, start)
    below = np.concatenate([[0.0], np.cumsum(neg_group)[:-1]])
    return float(np.sum(pos_group * (below + 0.5 * neg_group)) / (pos.sum() * neg.sum()))


def fit_weights(f, y, w, *, l2: float = 1e-4):
    """``(u, b)`` of the length-weighted logistic regression ``sigmoid(u . f + b)``, ``u >= 0``."""
    from scipy.optimize import minimize

    scale = f.std(axis=0) + 1e-12  # fitted on standardised columns, returned in the raw units
    z = f / scale
    wn = w / w.sum()

    def loss(theta):
        u, b = theta[:-1], theta[-1]
        t = z @ u + b
        # log(1 + e^t) - y t, stably
        ll = np.logaddexp(0.0, t) - y * t
        p = 1.0 / (1.0 + np.exp(-t))
        g = wn * (p - y)
        return float(wn @ ll + l2 * u @ u), np.concatenate([z.T @ g + 2 * l2 * u, [g.sum()]])

    theta0 = np.concatenate([np.full(z.shape[1], 0.1), [-2.0]])
    bounds = [(0.0, None)] * z.shape[1] + [(None, None)]
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    if not res.success:
        raise RuntimeError(f"the logistic fit did not converge: {res.message}")
    return res.x[:-1] / scale, float(res.x[-1])


def ascend_auc(f, y, w, start, *, steps=(0.0, 0.5, 0.8, 1.25, 2.0), rounds: int = 10, tol: float = 1e-5):
    """Coordinate ascent on ``weighted_auc(f @ u, y, w)`` from ``start`` (``u >= 0``).

    Each round tries, for every weight in turn, the multiples ``steps`` of its value (a zero weight
    tries ``1/20`` and ``3/20`` of the mean strength over that column's mean) and keeps a change
    that raises the AUC by more than ``tol``; it stops after a round without one.
    Returns ``(u, auc)``.
    """
    u = np.asarray(start, np.float64).copy()
    best = weighted_auc(f @ u, y, w)
    col_mean = np.average(f, axis=0, weights=w)
    for _ in range(rounds):
        improved = False
        for c in range(len(u)):
            if u[c] > 0:
                tries = [u[c] * m for m in steps if m != 1.0]
            else:
                base = np.average(f @ u, weights=w) / max(col_mean[c], 1e-12)
                tries = [base / 20, 3 * base / 20]
            for v_c in tries:
                v = u.copy()
                v[c] = v_c
                a = weighted_auc(f @ v, y, w)
                if a > best + tol:
                    u, best, improved = v, a, True
        if not improved:
            break
    return u, best


def _xent_best_affine(s, y, w) -> float:
    """Length-weighted cross-entropy of ``sigmoid(a s + b)`` with the best ``a, b`` (a fair
    comparison of two strength rules, whatever their scale)."""
    from scipy.optimize import minimize

    wn = w / w.sum()
    sd = s.std() + 1e-12

    def loss(t):
        v = t[0] * s / sd + t[1]
        return float(wn @ (np.logaddexp(0.0, v) - y * v))

    return float(minimize(loss, [1.0, 0.0], method="Nelder-Mead").fun)


def cmd_fit(args) -> int:
    from bottomup.contours.mpb import GPB_WEIGHTS_COLOR

    data = _load(Path(args.cache), args.split)
    is_held = [bool(args.hold_every) and i % args.hold_every == args.hold_every - 1 for i in range(len(data))]
    held = [d for d, h in zip(data, is_held, strict=True) if h]
    fit = [d for d, h in zip(data, is_held, strict=True) if not h]
    cat = [np.concatenate([d[j] for d in fit]) for j in (1, 2, 3)]
    release = np.asarray(GPB_WEIGHTS_COLOR)
    if args.method == "logistic":
        u, _ = fit_weights(*cat, l2=args.l2)
    else:
        u, _ = ascend_auc(*cat, release)
    # the same length-weighted mean strength on the training arcs as the release weights
    ref = np.average(cat[0] @ release, weights=cat[2])
    new = u * ref / np.average(cat[0] @ u, weights=cat[2])
    summary = {"method": args.method, "n_images": len(data), "n_fit": len(fit), "n_held": len(held),
               "n_arcs_fit": int(len(cat[0])), "channels": list(CHANNELS), "release": release.tolist(),
               "fitted": new.round(5).tolist()}
    for name, part in (("fit", fit), ("held", held)):
        if not part:
            continue
        f, y, w = (np.concatenate([d[j] for d in part]) for j in (1, 2, 3))
        summary[name] = {rule: {"auc": weighted_auc(f @ wt, y, w), "xent": _xent_best_affine(f @ wt, y, w)}
                         for rule, wt in (("release", release), ("fitted", new))}
    print(json.dumps(summary, indent=1))
    if args.json:
        tmp = args.json + ".tmp"
        Path(tmp).write_text(json.dumps(summary, indent=1))
        os.replace(tmp, args.json)
    return 0


def cmd_probe(args) -> int:
    """Does the arc scorer gain from the channel means? Fits ``deep.contours.arcs`` MLPs with and
    without them on the same arcs (``bench/train_arcs.py --contours gpb`` cache joined to ours)."""
    from deep.contours.arcs import fit_arc_scorer, weighted_bce

    arcs = Path(args.arcs_cache)
    fit, hold, skipped = [], [], []
    names = sorted(p.stem.split("_", 1)[1] for p in Path(args.cache).glob(f"{args.split}_*.npz"))
    for i, name in enumerate(names):  # train_arcs.py holds out i % 10 == 0 over the sorted names
        with np.load(Path(args.cache) / f"{args.split}_{name}.npz") as d:
            if "gray" in d.files:
                continue
            f, y, w = d["f"], d["y"], d["w"]
        match = []
        for p in arcs.glob(f"{args.split}_{name}-*.npz"):
            with np.load(p) as a:
                if a["x"].shape[0] == len(y) and np.allclose(a["w"], w) and np.allclose(a["y"], y):
                    match.append(a["x"])
        if len(match) != 1:  # that cache's partition differs (float ties) or is absent
            skipped.append(name)
            continue
        x = np.concatenate([match[0], np.log1p(f.clip(0) / np.maximum(f.mean(0, keepdims=True), 1e-6))], 1)
        (hold if i % 10 == 0 else fit).append((x, y, w))
    if not fit or not hold:
        raise SystemExit(f"no arcs of {args.split} images in both {args.cache} and {arcs}")
    x, y, w = (np.concatenate([q[j] for q in fit]) for j in range(3))
    xh, yh, wh = (np.concatenate([q[j] for q in hold]) for j in range(3))
    out = {"n_fit": len(fit), "n_held": len(hold), "skipped": skipped,
           "mean_strength": {"held_bce": weighted_bce(xh[:, 0], yh, wh),
                             "held_auc": weighted_auc(xh[:, 0], yh, wh)}}
    for name, n_col in (("features20", x.shape[1] - len(CHANNELS)), ("features20+channels13", x.shape[1])):
        p = fit_arc_scorer(x[:, :n_col], y, w, seed=0)(xh[:, :n_col])
        out[name] = {"held_bce": weighted_bce(p, yh, wh), "held_auc": weighted_auc(p, yh, wh)}
    print(json.dumps(out, indent=1))
    return 0


def _segment_one(job):
    image_path, out, weights = job
    if os.path.exists(out):
        return out
    import bottomup
    from bottomup.io import read_image, write_ucm2

    write_ucm2(out, bottomup.segment(read_image(image_path), contours=weighted_source(weights)).to_ucm2())
    return out


def cmd_segment(args) -> int:
    """The default two-scale hierarchy of every image of a split under refitted weights, as ucm2 .mat."""
    from bottomup.contours.mpb import GPB_WEIGHTS_COLOR

    if args.weights == "release":
        weights = list(GPB_WEIGHTS_COLOR)
    else:
        path = Path(args.weights)
        if not path.is_file():
            raise SystemExit(f"--weights must be 'release' or the JSON written by `fit --json`, got {path}: "
                             f"no such file")
        weights = json.loads(path.read_text()).get("fitted")
        if weights is None or len(weights) != len(CHANNELS):
            raise SystemExit(f"--weights {path}: expected a `fitted` list of {len(CHANNELS)} weights")
    img_dir = Path(args.root) / "data" / "images" / args.split
    names = sorted(f.stem for f in img_dir.glob("*.jpg"))
    if not names:
        raise SystemExit(f"no .jpg images in {img_dir}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(img_dir / f"{n}.jpg"), str(out / f"{n}.mat"), weights) for n in names]
    _run(_segment_one, jobs, args.workers, "ucm2")
    return 0


def _run(fn, jobs, workers: int, what: str) -> None:
    t0 = time.perf_counter()
    for _ in map_unordered(fn, jobs, workers, progress=stderr_counter(what)):
        pass
    print(f"{len(jobs)} images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "bsds500"))
    c.add_argument("--split", default="train")
    c.add_argument("--cache", required=True)
    c.add_argument("--workers", type=int, default=1)
    c.add_argument("--max-images", type=int, default=0)
    f = sub.add_parser("fit")
    f.add_argument("--cache", required=True)
    f.add_argument("--split", default="train")
    f.add_argument("--hold-every", type=int, default=10)
    f.add_argument("--method", choices=("auc", "logistic"), default="auc")
    f.add_argument("--l2", type=float, default=1e-4, help="ridge penalty of --method logistic")
    f.add_argument("--json")
    g = sub.add_parser("segment")
    g.add_argument("--root", default=os.path.join(os.environ.get("BOTTOMUP_DATA", ""), "bsds500"))
    g.add_argument("--split", default="val")
    g.add_argument("--weights", required=True, help="'release' or the JSON of `fit --json`")
    g.add_argument("--out", required=True, help="folder of ucm2 .mat files (then bench/bsds.py)")
    g.add_argument("--workers", type=int, default=1)
    q = sub.add_parser("probe")
    q.add_argument("--cache", required=True)
    q.add_argument("--arcs-cache", required=True, help="the --cache of bench/train_arcs.py --contours gpb")
    q.add_argument("--split", default="train")
    args = p.parse_args(argv)
    return {"cache": cmd_cache, "fit": cmd_fit, "segment": cmd_segment, "probe": cmd_probe}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
