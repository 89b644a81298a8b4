"""Slow reference implementations for the dense CRF tests (O(N^2), small inputs only)."""

from __future__ import annotations

import numpy as np


def gaussian_matrix(features, blocks=None):
    """Exact kernel matrix ``k_ij = exp(-|f_i - f_j|^2 / 2) [block_i == block_j]`` (self term included)."""
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
