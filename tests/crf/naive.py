"""Slow reference implementations for the dense CRF tests (O(N^2), small inputs only)."""

from __future__ import annotations

import numpy as np


def gaussian_matrix(features, blocks=None):
    """Exact kernel ``k_ij = exp(-|f_i - f_j|^2 / 2) [block_i == block_j]`` (self term included)."""
    f = np.asarray(features, np.float64)
    d2 = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    k = np.exp(-0.5 * d2)
    if blocks is not None:
        b = np.asarray(blocks)
        k = k * (b[:, None] == b[None, :])
    return k


def naive_filter(features, values, blocks=None):
    """Normalised brute-force Gaussian filter ``sum_j k_ij v_j / sum_j k_ij``."""
    k = gaussian_matrix(features, blocks)
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        v = v[:, None]
    return (k @ v) / k.sum(1, keepdims=True)


def naive_features(image, theta_alpha, theta_beta, theta_gamma):
    """Smoothness (row, col) / theta_gamma and appearance (row, col, 255 rgb) features."""
    img = np.asarray(image, np.float64)
    h, w = img.shape[:2]
    rows, cols = np.mgrid[0:h, 0:w]
    pos = np.stack([rows.ravel(), cols.ravel()], 1).astype(np.float64)
    f_smooth = pos / theta_gamma
    f_app = np.concatenate([pos / theta_alpha, img.reshape(-1, 3) * 255.0 / theta_beta], 1)
    return f_smooth, f_app


def naive_mean_field(
    unary,
    image,
    *,
    n_iter=5,
    w_appearance=4.0,
    theta_alpha=121.0,
    theta_beta=5.0,
    w_smoothness=3.0,
    theta_gamma=3.0,
    regions=None,
    compatibility=None,
):
    """Parallel mean field with exact O(N^2) Gaussian kernels, densecrf's symmetric normalisation.

    ``K' = D K D`` with ``D = diag(1 / sqrt(K 1))`` and the self term kept, the same operator the
    lattice approximates; Potts when ``compatibility`` is None.
    """
    u = np.asarray(unary, np.float64)
    n_lab, h, w = u.shape
    un = u.reshape(n_lab, -1).T
    f_smooth, f_app = naive_features(image, theta_alpha, theta_beta, theta_gamma)
    mats = []
    for f, wt, blk in ((f_app, w_appearance, regions), (f_smooth, w_smoothness, None)):
        k = gaussian_matrix(f, None if blk is None else np.asarray(blk).ravel())
        dinv = 1.0 / np.sqrt(k.sum(1))
        mats.append(wt * dinv[:, None] * k * dinv[None, :])
    kk = sum(mats)
    mu = 1.0 - np.eye(n_lab) if compatibility is None else np.asarray(compatibility, np.float64)

    def softmax(z):
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    q = softmax(-un)
    for _ in range(n_iter):
        pair = kk @ q
        q = softmax(-un - pair @ mu.T)
    return q.T.reshape(n_lab, h, w)
