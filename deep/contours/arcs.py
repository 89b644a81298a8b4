"""Training of the arc scorer of ``bottomup.owt.arc_scores`` (a small MLP, fitted with torch).

Inference needs numpy only (:class:`bottomup.owt.arc_scores.ArcScorer`); this module fits one on
arc features and region-pair targets (``bench/train_arcs.py`` collects them on BSDS500 train).
"""

from __future__ import annotations

import numpy as np
import torch

from bottomup.owt.arc_scores import ArcScorer

__all__ = ["fit_arc_scorer", "weighted_bce"]


def weighted_bce(prob, y, w) -> float:
    """Length-weighted binary cross-entropy of probabilities ``prob`` against soft targets ``y``.

    ``sum(w * bce) / sum(w)`` with the probabilities clipped to ``[1e-7, 1 - 1e-7]``; all ``(A,)``.
    """
    p = np.clip(np.asarray(prob, np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, np.float64)
    w = np.asarray(w, np.float64)
    return float(np.sum(w * -(y * np.log(p) + (1 - y) * np.log1p(-p))) / np.sum(w))


def fit_arc_scorer(x, y, w, *, hidden: int = 32, layers: int = 2, epochs: int = 30,
                   batch_size: int = 1024, lr: float = 1e-3, weight_decay: float = 1e-5,
                   seed: int = 0, meta: dict | None = None) -> ArcScorer:
    """Fit an :class:`ArcScorer` by length-weighted binary cross-entropy (Adam, cosine decay).

    Parameters
    ----------
    x : (A, F) array_like
        Arc features (:func:`bottomup.owt.arc_scores.arc_features`).
    y : (A,) array_like in [0, 1]
        Targets (:func:`bottomup.owt.arc_scores.region_pair_targets`): soft labels.
    w : (A,) array_like, > 0
        Sample weights (the arcs' lengths: the boundary benchmark counts pixels).
    hidden, layers : int
        Width and number of the ReLU hidden layers.
    epochs, batch_size, lr, weight_decay : optional
        Optimisation.
    seed : int
        Seed of the initialisation and of the batch order (the fit is deterministic on the CPU).
    meta : dict, optional
        Provenance stored with the scorer.

    Returns
    -------
    ArcScorer
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.asarray(w, np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or y.shape != (x.shape[0],) or w.shape != (x.shape[0],):
        raise ValueError(
            f"`x` must be (A, F) with A > 0 and `y`, `w` (A,); got {x.shape}, {y.shape}, {w.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(w).all()):
        raise ValueError("`x`, `y` and `w` must be finite")
    if (y < 0).any() or (y > 1).any() or (w <= 0).any():
        raise ValueError("`y` must lie in [0, 1] and `w` be > 0")
    if hidden < 1 or layers < 1 or epochs < 1 or batch_size < 1:
        raise ValueError(f"`hidden`, `layers`, `epochs` and `batch_size` must be >= 1, got "
                         f"{hidden}, {layers}, {epochs}, {batch_size}")
    mean, scale = x.mean(0), x.std(0) + 1e-6
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dims = [x.shape[1]] + [hidden] * layers + [1]
    mods = []
    for i in range(len(dims) - 1):
        mods.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods).double()
    xt = torch.as_tensor((x - mean) / scale)
    yt = torch.as_tensor(y)
    wt = torch.as_tensor(w / w.mean())
    n = xt.shape[0]
    steps = epochs * ((n + batch_size - 1) // batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(xt[idx])[:, 0], yt[idx], weight=wt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    return ArcScorer(mean, scale, tuple(m.weight.detach().numpy().T.copy() for m in lin),
                     tuple(m.bias.detach().numpy().copy() for m in lin), dict(meta or {}))
