"""Edge-aware fully connected CRF with mean-field inference on the permutohedral lattice.

The energy (Kraehenbuehl & Koltun 2011 [1]_)::

    E(x) = sum_i psi_u(x_i) + sum_{i<j} mu(x_i, x_j) k(f_i, f_j)
    k = w_a exp(-|p_i-p_j|^2 / 2 theta_a^2 - |I_i-I_j|^2 / 2 theta_b^2)   (appearance)
      + w_s exp(-|p_i-p_j|^2 / 2 theta_g^2)                             (smoothness)
      + w_e exp(-|p_i-p_j|^2 / 2 theta_e^2) [r_i == r_j]                (edge-aware, with contours)

where ``r`` is the region of each pixel in a cut of a contour map: the third kernel pulls pixels
together only when no contour stronger than the threshold separates them (without contours it is
absent, giving the plain DeepLab CRF). Mean field updates all pixels in parallel
``Q_i(l) ∝ exp(-psi_u(l) - sum_l' mu(l, l') sum_m w_m (K_m Q)_i(l'))``; the Gaussian filtering
``K_m Q`` runs on the permutohedral lattice [2]_ with densecrf's symmetric normalisation
``K_m = D S B S^T D``, ``D = diag(1 / sqrt(S B S^T 1))``. Two paths share the maths: numba on
numpy inputs (CPU) and pure torch on tensors (any device, differentiable: :class:`DenseCRF`).

References
----------
.. [1] P. Kraehenbuehl, V. Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian Edge
       Potentials", NIPS 2011.
.. [2] A. Adams, J. Baek, M. A. Davis, "Fast High-Dimensional Filtering Using the Permutohedral
       Lattice", Computer Graphics Forum 29(2), 2010.
.. [3] P. Kraehenbuehl, V. Koltun, "Parameter Learning and Convergent Inference for Dense Random
       Fields", ICML 2013.
.. [4] L.-C. Chen et al., "Semantic Image Segmentation with Deep Convolutional Nets and Fully
       Connected CRFs", ICLR 2015 (DeepLab; the default parameters).
.. [5] S. Zheng et al., "Conditional Random Fields as Recurrent Neural Networks", ICCV 2015.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi
from torch import nn

from bottomup.validate import check_image, check_map, check_ucm2
from deep.crf import _lattice_kernels as _k
from deep.crf.lattice import Lattice, build_lattice
from deep.crf.lattice_torch import TorchLattice, build_lattice_torch, torch_lattice_from_numba

__all__ = ["DenseCRF", "contours_to_regions", "dense_crf", "unary_from_probabilities"]

# ---------------------------------------------------------------------------------------------
# validation and features
# ---------------------------------------------------------------------------------------------


def _kernel_params(w_appearance, theta_alpha, theta_beta, w_smoothness, theta_gamma, w_edge,
                   theta_edge):
    """The kernel weights and bandwidths by name (checked by :func:`_check_params`)."""
    return dict(w_appearance=w_appearance, theta_alpha=theta_alpha, theta_beta=theta_beta,
                w_smoothness=w_smoothness, theta_gamma=theta_gamma, w_edge=w_edge,
                theta_edge=theta_edge)


def _check_params(n_iter, contour_threshold, params):
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ValueError(f"`n_iter` must be a non-negative integer, got {n_iter!r}")
    for name, val in params.items():  # the weights first, then the bandwidths
        if name.startswith("w_") and not (math.isfinite(float(val)) and float(val) >= 0):
            raise ValueError(f"`{name}` must be a finite weight >= 0, got {val!r}")
    for name, val in params.items():
        if name.startswith("theta_") and not (math.isfinite(float(val)) and float(val) > 0):
            raise ValueError(f"`{name}` must be a finite standard deviation > 0, got {val!r}")
    if not (0.0 <= float(contour_threshold) <= 1.0):
        raise ValueError(f"`contour_threshold` must lie in [0, 1], got {contour_threshold!r}")


def _check_unary(unary, name="unary") -> tuple[int, int, int]:
    if isinstance(unary, torch.Tensor):
        if not unary.is_floating_point():
            raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {unary.dtype}")
        finite = bool(torch.isfinite(unary).all())
    elif isinstance(unary, np.ndarray):
        if not np.issubdtype(unary.dtype, np.number) or np.issubdtype(
            unary.dtype, np.complexfloating
        ):
            raise TypeError(f"`{name}` must be a real numeric array, got dtype {unary.dtype}")
        finite = bool(np.isfinite(unary).all())
    else:
        raise TypeError(
            f"`{name}` must be a numpy array or torch tensor, got {type(unary).__name__}"
        )
    if unary.ndim != 3:
        raise ValueError(
            f"`{name}` must be (L, H, W) unary energies (one plane per label), got shape "
            f"{tuple(unary.shape)}; pass one image at a time (use DenseCRF for batches)"
        )
    n_lab, h, w = unary.shape
    if n_lab == 0 or h == 0 or w == 0:
        raise ValueError(f"`{name}` is empty: shape {tuple(unary.shape)}")
    if not finite:
        raise ValueError(
            f"`{name}` contains NaN or inf; unary energies must be finite (-log of probabilities "
            "clipped away from 0: use unary_from_probabilities)"
        )
    return n_lab, h, w


def unary_from_probabilities(
    probabilities: ArrayLike | torch.Tensor, *, eps: float = 1e-8, atol: float = 1e-3
) -> NDArray[np.float32] | torch.Tensor:
    """Convert per-pixel label probabilities to unary energies ``-log(max(P, eps))``.

    Parameters
    ----------
    probabilities : (L, H, W) ndarray or Tensor
        A softmax output: values in [0, 1] that sum to one over axis 0.
    eps : float
        Floor applied before the logarithm (an impossible label gets energy ``-log(eps)``).
    atol : float
        Tolerance on the per-pixel sums.

    Returns
    -------
    unary : (L, H, W) ndarray of float32 or Tensor (same type as the input)

    Raises
    ------
    ValueError
        If values fall outside [0, 1], are NaN, or do not sum to one per pixel.
    """
    is_t = isinstance(probabilities, torch.Tensor)
    p = probabilities.detach().cpu().double().numpy() if is_t else np.asarray(probabilities, np.float64)
    if p.ndim != 3 or p.shape[0] == 0:
        raise ValueError(f"`probabilities` must be (L, H, W) with L >= 1, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("`probabilities` contains NaN or inf")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(
            f"`probabilities` must lie in [0, 1], got values in [{p.min():.4g}, {p.max():.4g}]; "
            "for scores/logits use unary = -log_softmax(scores) instead"
        )
    s = p.sum(0)
    if np.abs(s - 1).max() > atol:
        raise ValueError(
            f"`probabilities` must sum to one over labels (axis 0) per pixel, got sums in "
            f"[{s.min():.4g}, {s.max():.4g}]; divide by the sum (or apply a softmax) first"
        )
    if is_t:
        return -torch.log(probabilities.clamp_min(eps))
    return (-np.log(np.maximum(p, eps))).astype(np.float32)


def contours_to_regions(
    contours: ArrayLike, shape: tuple[int, int], *, threshold: float = 0.2
) -> NDArray[np.int32]:
    """Cut a contour map into regions: the blocks the edge-aware kernel stays inside.

    Parameters
    ----------
    contours : (H, W) or (2H+1, 2W+1) array_like of float
        A contour map in [0, 1] (e.g. gPb or ``ucm2[2::2, 2::2]``), or a ucm2 in the BSDS
        double-size layout.
    shape : (H, W)
        Image shape.
    threshold : float
        Contour strength at which regions are cut (ucm2: ``ucm2 <= threshold`` connects pixels;
        (H, W) map: pixels with ``contours <= threshold`` are interior).

    Returns
    -------
    regions : (H, W) ndarray of int32
        Dense labels 0..R-1 (4-connected components); contour pixels of an (H, W) map join the
        nearest interior region (Euclidean distance transform).
    """
    h, w = shape
    arr = np.asarray(contours)
    if arr.shape == (2 * h + 1, 2 * w + 1):
        ucm2 = check_ucm2(arr, name="contours")
        lab = ndi.label(ucm2 <= threshold)[0][1::2, 1::2]
    elif arr.shape == (h, w):
        cmap = check_map(arr, name="contours", lo=0.0, hi=1.0)
        lab = ndi.label(cmap <= threshold)[0]
        if lab.max() == 0:
            return np.zeros((h, w), np.int32)
        if (lab == 0).any():
            idx = ndi.distance_transform_edt(lab == 0, return_distances=False, return_indices=True)
            lab = lab[idx[0], idx[1]]
    else:
        raise ValueError(
            f"`contours` (shape {arr.shape}) must be an (H, W) = {(h, w)} contour map or a "
            f"(2H+1, 2W+1) = {(2 * h + 1, 2 * w + 1)} ucm2 matching the image"
        )
    _, dense = np.unique(lab, return_inverse=True)
    return dense.reshape(h, w).astype(np.int32)


def _regions(contours, h, w, threshold):
    """:func:`contours_to_regions` of a contour map or tensor; None without contours."""
    if contours is None:
        return None
    arr = contours.detach().cpu().numpy() if isinstance(contours, torch.Tensor) else contours
    return contours_to_regions(arr, (h, w), threshold=threshold)


def _features(image: np.ndarray, theta_alpha, theta_beta, theta_gamma):
    h, w = image.shape[:2]
    rows, cols = np.mgrid[0:h, 0:w]
    pos = np.stack([rows.ravel(), cols.ravel()], 1).astype(np.float64)
    f_smooth = pos / theta_gamma
    f_app = np.concatenate([pos / theta_alpha, image.reshape(-1, 3) * (255.0 / theta_beta)], 1)
    return np.ascontiguousarray(f_smooth), np.ascontiguousarray(f_app)


def _kernel_specs(image, regions, params):
    """(features, blocks, weight) of each active kernel: appearance, smoothness, edge-aware."""
    f_smooth, f_app = _features(image, params["theta_alpha"], params["theta_beta"], params["theta_gamma"])
    specs = [(f_app, None, params.get("w_appearance")), (f_smooth, None, params.get("w_smoothness"))]
    if regions is not None:
        f_edge = f_smooth * (params["theta_gamma"] / params["theta_edge"])
        specs.append((f_edge, regions.ravel().astype(np.int64), params.get("w_edge")))
    return specs


def _as_compat(compatibility, n_lab):
    if compatibility is None or (isinstance(compatibility, str) and compatibility == "potts"):
        return None
    if isinstance(compatibility, str):
        raise ValueError(
            f"`compatibility` must be 'potts', None or an (L, L) matrix, got {compatibility!r}"
        )
    c = compatibility
    if not hasattr(c, "shape"):
        c = np.asarray(c, np.float64)
    if tuple(c.shape) != (n_lab, n_lab):
        raise ValueError(
            f"`compatibility` (shape {tuple(c.shape)}) must be (L, L) = {(n_lab, n_lab)}"
        )
    vals = c.detach().cpu().numpy() if isinstance(c, torch.Tensor) else np.asarray(c, np.float64)
    if not np.isfinite(vals).all():
        raise ValueError("`compatibility` contains NaN or inf")
    return c


# ---------------------------------------------------------------------------------------------
# numpy / numba path
# ---------------------------------------------------------------------------------------------


class _NumbaKernel:
    """One normalised Gaussian kernel ``w D S B S^T D`` on a numba lattice."""

    def __init__(self, features, blocks, weight):
        self.lattice: Lattice = build_lattice(features, blocks)
        ones = np.ones((self.lattice.n_points, 1), np.float32)
        deg = self.lattice.filter(ones)[:, 0]
        norm = (1.0 / np.sqrt(deg + 1e-20)).astype(np.float32)
        self.w = np.ascontiguousarray(self.lattice.bary * norm[:, None])
        self.weight = float(weight)

    def apply(self, q, out, accumulate, buffers):
        self.lattice.filter(q, w_splat=self.w, w_slice=self.w, scale=self.weight, out=out,
                            accumulate=accumulate, buffers=buffers)


def _energy(unary_nl, q, pair, compat) -> float:
    """Mean-field free energy ``<psi, Q> + 1/2 <Q, mu (sum_m w_m K_m Q)> - H(Q)`` (float64)."""
    q64 = q.astype(np.float64)
    p64 = pair.astype(np.float64)
    if compat is None:  # mu = 1 - I
        mp = p64.sum(1, keepdims=True) - p64
    else:
        mp = p64 @ np.asarray(compat, np.float64).T
    ent = np.where(q64 > 0, q64 * np.log(np.maximum(q64, 1e-300)), 0.0).sum()
    return float((unary_nl * q64).sum() + 0.5 * (q64 * mp).sum() + ent)


def _dense_crf_numpy(unary, image, regions, n_iter, params, compat, return_energy):
    n_lab, h, w = unary.shape
    n = h * w
    neg = np.empty((n, n_lab), np.float32)
    _k._neg_transpose_kernel(np.ascontiguousarray(unary.reshape(n_lab, n), dtype=np.float32), neg)
    q = np.empty((n, n_lab), np.float32)
    pair = np.zeros((n, n_lab), np.float32)  # messages; zero for Q0 = softmax(-unary)
    _k._softmax_update(neg, pair, None, q)
    energies = []
    kernels = []
    if n_lab > 1:
        for feat, blocks, weight in _kernel_specs(image, regions, params):
            if float(weight) > 0:
                kernels.append(_NumbaKernel(feat, blocks, weight))
    if compat is not None:
        compat = np.ascontiguousarray(np.asarray(compat, np.float64), dtype=np.float32)
    max_v = max([kk.lattice.n_vertices for kk in kernels], default=0)
    buf = np.empty((2, max_v, n_lab), np.float32)
    unary64 = -neg.astype(np.float64) if return_energy else None

    def messages(qq):
        for i, kern in enumerate(kernels):
            nv = kern.lattice.n_vertices
            kern.apply(qq, pair, i > 0, (buf[0, :nv], buf[1, :nv]))
        if not kernels:
            pair[:] = 0.0

    for it in range(n_iter + (1 if return_energy else 0)):
        messages(q)
        if return_energy:
            energies.append(_energy(unary64, q, pair, compat))
            if it == n_iter:
                break
        _k._softmax_update(neg, pair, compat, q)
    out = np.empty((n_lab, n), np.float32)
    _k._transpose_kernel(q, out)
    return out.reshape(n_lab, h, w), energies


# ---------------------------------------------------------------------------------------------
# torch path
# ---------------------------------------------------------------------------------------------


class _TorchKernel:
    """One normalised kernel on a :class:`TorchLattice` (built by torch on GPUs, numba on CPU)."""

    def __init__(self, features: np.ndarray, blocks, device, dtype):
        feat = torch.as_tensor(features, dtype=torch.float64, device=device)
        if feat.device.type == "cpu":  # same lattice, built ~20x faster by the numba kernels
            self.lattice: TorchLattice = torch_lattice_from_numba(build_lattice(features, blocks))
        else:
            blk = None if blocks is None else torch.as_tensor(blocks, device=device)
            self.lattice = build_lattice_torch(feat, blk)
        with torch.no_grad():
            ones = torch.ones(feat.shape[0], 1, dtype=torch.float64, device=device)
            bary = self.lattice.bary.to(torch.float64)
            deg = self.lattice.filter(ones, bary)[:, 0]
            self.w = (bary / torch.sqrt(deg + 1e-20).unsqueeze(1)).to(dtype)

    def apply(self, q):
        return self.lattice.filter(q, self.w)


def _mean_field_torch(unary_nl, kernels, weights, compat, n_iter, return_energy=False):
    """Differentiable mean field on (N, L) unaries; ``weights`` are tensors or floats."""
    q = torch.softmax(-unary_nl, 1)
    energies = []

    def messages(qq):
        pair = torch.zeros_like(qq)
        for kern, wt in zip(kernels, weights, strict=True):
            pair = pair + wt * kern.apply(qq)
        return pair

    for it in range(n_iter + (1 if return_energy else 0)):
        pair = messages(q)
        if compat is None:
            mp = pair.sum(1, keepdim=True) - pair
        else:
            mp = pair @ compat.t()
        if return_energy:
            with torch.no_grad():
                q64, mp64 = q.double(), mp.double()
                ent = torch.where(q64 > 0, q64 * torch.log(q64.clamp_min(1e-300)), 0.0).sum()
                energies.append(
                    float((unary_nl.double() * q64).sum() + 0.5 * (q64 * mp64).sum() + ent)
                )
            if it == n_iter:
                break
        q = torch.softmax(-unary_nl - mp, 1)
    return q, energies


def _image_to_numpy(image, h, w):
    if isinstance(image, torch.Tensor):
        arr = image.detach().cpu().numpy()
        if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
            arr = np.moveaxis(arr, 0, -1)
    else:
        arr = image
    img = check_image(arr, name="image")
    if img.shape[:2] != (h, w):
        raise ValueError(
            f"`image` (shape {img.shape[:2]}) must have the same (H, W) as `unary` (shape {(h, w)})"
        )
    return img


def _dense_crf_torch(unary, image, regions, n_iter, params, compat, return_energy):
    n_lab, h, w = unary.shape
    dev, dt = unary.device, unary.dtype
    unary_nl = unary.reshape(n_lab, h * w).t()
    kernels, weights = [], []
    if n_lab > 1:
        for feat, blocks, weight in _kernel_specs(image, regions, params):
            if float(weight) > 0:
                kernels.append(_TorchKernel(feat, blocks, dev, dt))
                weights.append(weight)
    if compat is not None:
        compat = torch.as_tensor(compat, dtype=dt, device=dev)
    q, energies = _mean_field_torch(unary_nl, kernels, weights, compat, n_iter, return_energy)
    return q.t().reshape(n_lab, h, w), energies


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def dense_crf(
    unary: NDArray[np.floating] | torch.Tensor,
    image: ArrayLike | torch.Tensor,
    *,
    contours: ArrayLike | torch.Tensor | None = None,
    n_iter: int = 5,
    w_appearance: float = 4.0,
    theta_alpha: float = 121.0,
    theta_beta: float = 5.0,
    w_smoothness: float = 3.0,
    theta_gamma: float = 3.0,
    w_edge: float = 5.0,
    theta_edge: float = 40.0,
    contour_threshold: float = 0.2,
    compatibility: str | ArrayLike | torch.Tensor | None = None,
    return_energy: bool = False,
    max_pixels: int = 4_000_000,
) -> (
    NDArray[np.float32]
    | torch.Tensor
    | tuple[NDArray[np.float32] | torch.Tensor, NDArray[np.float64]]
):
    """Mean-field inference in an edge-aware fully connected CRF.

    The CRF of Kraehenbuehl & Koltun [1]_ with an appearance (bilateral: position + RGB) and a
    smoothness (position) Gaussian kernel, parallel mean-field updates whose message passing is
    Gaussian filtering on the permutohedral lattice [2]_. The defaults are DeepLab-LargeFOV's
    [4]_ (w1 = 4, theta_alpha = 121, theta_beta = 5, w2 = 3, theta_gamma = 3; DeepLab ran 10
    iterations, the default here is 5).

    **Edge-aware term.** With ``contours``, the contour map is cut at ``contour_threshold`` into
    regions (:func:`contours_to_regions`) and a third Gaussian kernel over position,
    ``w_edge exp(-|p_i - p_j|^2 / 2 theta_edge^2) [r_i == r_j]``, is added: its pairwise weights
    are zero across every contour stronger than the threshold, so pixels are pulled towards the
    labels of their own side of the strong contours (a soft region-consistency term). The cut is
    exact: the lattice vertices are keyed on the region (no extra feature dimension). Cutting the
    DeepLab kernels themselves instead (blocking the appearance and/or smoothness kernel) lost
    accuracy (``bench/crf.py --synthetic``; figures: docs/results.md#dense-crf), so the DeepLab
    kernels stay intact.

    Parameters
    ----------
    unary : (L, H, W) ndarray or Tensor of float
        Unary energies ``psi_u = -log P(label)`` (e.g. from :func:`unary_from_probabilities` or
        ``-log_softmax(logits)``). Any finite real values work: only differences between labels
        at a pixel matter, so they need not come from normalised probabilities. A numpy array runs
        the numba path (CPU); a tensor runs the torch path on its device.
    image : (H, W, 3) array_like
        The RGB image (any dtype accepted by ``bottomup``; floats in [0, 1]). For tensors,
        ``(3, H, W)`` is accepted too. Colours enter the kernel in 0..255 units, as in densecrf.
    contours : (H, W) or (2H+1, 2W+1) array_like of float, optional
        Contour map in [0, 1] (gPb, ``ucm2[2::2, 2::2]``) or a BSDS-layout ucm2.
    n_iter : int
        Mean-field iterations (0 returns ``softmax(-unary)``).
    w_appearance, theta_alpha, theta_beta : float
        Weight, position and colour standard deviations of the appearance kernel.
    w_smoothness, theta_gamma : float
        Weight and position standard deviation of the smoothness kernel.
    w_edge, theta_edge : float
        Weight and position standard deviation of the edge-aware region kernel (used only with
        ``contours``; provisional defaults chosen on synthetic MSRC unaries with proxy contours).
    contour_threshold : float
        Strength in [0, 1] at which ``contours`` are cut into regions.
    compatibility : None, 'potts' or (L, L) array_like, optional
        Label compatibility ``mu``; None/'potts' is ``mu(l, l') = [l != l']``.
    return_energy : bool
        Also return the mean-field free energy of each iterate.
    max_pixels : int
        Refuse images larger than this (memory grows as about 700 bytes per pixel for 21 labels:
        105 MB for 481x321); downscale ``unary`` and ``image`` and upsample ``Q`` instead.

    Returns
    -------
    Q : (L, H, W) ndarray of float32 or Tensor
        Marginals, summing to one per pixel; labels are ``Q.argmax(0)``.
    energy : (n_iter + 1,) ndarray of float64
        Only if ``return_energy``: ``F(Q^t) = <psi, Q> + 1/2 sum_m w_m <Q, mu K_m Q> + sum Q log Q``
        for ``t = 0..n_iter``, with the lattice operators ``K_m`` (self term included).

    Raises
    ------
    TypeError
        If ``unary`` is neither a numpy array nor a float tensor.
    ValueError
        If shapes disagree, ``unary`` holds NaN/inf, or a parameter is out of range.

    Notes
    -----
    Each ``K_m = D S B S^T D`` is symmetric positive semi-definite (see :mod:`deep.crf.lattice`),
    so for the Potts model (equivalently ``mu = -I`` on the simplex, negative definite) the
    parallel update is a concave-convex step [3]_ and the free energy never increases: no damping
    is needed. For a learned ``compatibility`` that is not negative semi-definite there is no such
    guarantee. Cost: O(N (d + 1) L) per iteration and kernel, N = H W.

    References
    ----------
    .. [1] P. Kraehenbuehl, V. Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian
           Edge Potentials", NIPS 2011.
    .. [2] A. Adams, J. Baek, M. A. Davis, "Fast High-Dimensional Filtering Using the
           Permutohedral Lattice", Computer Graphics Forum 29(2), 2010.
    .. [3] P. Kraehenbuehl, V. Koltun, "Parameter Learning and Convergent Inference for Dense
           Random Fields", ICML 2013.
    .. [4] L.-C. Chen et al., "Semantic Image Segmentation with Deep Convolutional Nets and Fully
           Connected CRFs", ICLR 2015.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = np.zeros((8, 8, 3)); image[:, 4:] = 1.0
    >>> truth = (np.arange(8)[None, :] >= 4).repeat(8, 0)
    >>> prob = np.where(rng.random((8, 8)) < 0.8, truth, 1 - truth).astype(float) * 0.4 + 0.3
    >>> unary = unary_from_probabilities(np.stack([1 - prob, prob]))
    >>> q = dense_crf(unary, image, theta_alpha=10.0, w_appearance=10.0)
    >>> bool((q.argmax(0) == truth).all()), bool(np.allclose(q.sum(0), 1, atol=1e-5))
    (True, True)
    """
    n_lab, h, w = _check_unary(unary)
    if h * w > max_pixels:
        factor = math.ceil(math.sqrt(h * w / max_pixels))
        raise ValueError(
            f"`unary` has {h}x{w} = {h * w} pixels, more than max_pixels={max_pixels} (about "
            f"{h * w * (32 * n_lab + 200) / 1e9:.1f} GB would be needed); downscale `unary` and "
            f"`image` by {factor} (e.g. skimage.transform.rescale), run the CRF, and upsample Q, "
            "or raise max_pixels"
        )
    params = _kernel_params(w_appearance, theta_alpha, theta_beta, w_smoothness, theta_gamma, w_edge,
                            theta_edge)
    _check_params(n_iter, contour_threshold, params)
    img = _image_to_numpy(image, h, w)
    compat = _as_compat(compatibility, n_lab)
    regions = _regions(contours, h, w, contour_threshold)
    if isinstance(unary, torch.Tensor):
        q, energies = _dense_crf_torch(unary, img, regions, int(n_iter), params, compat, return_energy)
    else:
        q, energies = _dense_crf_numpy(np.asarray(unary), img, regions, int(n_iter), params, compat,
                                       return_energy)
    return (q, np.asarray(energies)) if return_energy else q


class DenseCRF(nn.Module):
    """Trainable edge-aware dense CRF: mean field unrolled as a recurrent layer (CRF-as-RNN [5]_).

    The kernel weights (kept positive through a log parametrisation) and, optionally, the label
    compatibility matrix are ``nn.Parameter``; the bandwidths are fixed hyper-parameters (they
    define the lattice). Gradients flow to the unaries and to the parameters through every
    mean-field step (torch permutohedral lattice, any device).

    Parameters
    ----------
    n_labels : int
        Number of labels ``L``.
    n_iter : int
        Unrolled mean-field iterations.
    w_appearance, theta_alpha, theta_beta, w_smoothness, theta_gamma : float
        Initial weights and fixed bandwidths, as in :func:`dense_crf` (DeepLab defaults).
    w_edge, theta_edge : float
        Initial weight and fixed bandwidth of the edge-aware region kernel (used with contours).
    learn_compatibility : bool
        If True, ``compatibility`` is a free (L, L) parameter initialised to Potts ``1 - I``.
    contour_threshold : float
        Strength at which ``contours`` are cut into regions (see :func:`dense_crf`).

    Shape
    -----
    - unary: ``(N, L, H, W)`` unary energies ``-log P``.
    - image: ``(N, 3, H, W)`` in [0, 1].
    - contours (optional): ``(N, H, W)`` in [0, 1].
    - Output: ``(N, L, H, W)`` marginals.

    References
    ----------
    .. [5] S. Zheng et al., "Conditional Random Fields as Recurrent Neural Networks", ICCV 2015.
    """

    def __init__(
        self,
        n_labels: int,
        *,
        n_iter: int = 5,
        w_appearance: float = 4.0,
        theta_alpha: float = 121.0,
        theta_beta: float = 5.0,
        w_smoothness: float = 3.0,
        theta_gamma: float = 3.0,
        w_edge: float = 5.0,
        theta_edge: float = 40.0,
        learn_compatibility: bool = True,
        contour_threshold: float = 0.2,
    ):
        super().__init__()
        if isinstance(n_labels, bool) or not isinstance(n_labels, int) or n_labels < 1:
            raise ValueError(f"`n_labels` must be a positive integer, got {n_labels!r}")
        params = _kernel_params(w_appearance, theta_alpha, theta_beta, w_smoothness, theta_gamma,
                                w_edge, theta_edge)
        _check_params(n_iter, contour_threshold, params)
        if min(w_appearance, w_smoothness, w_edge) <= 0:
            raise ValueError(
                "`w_appearance`, `w_smoothness` and `w_edge` must be > 0 (learned on a log scale)"
            )
        self.n_labels = n_labels
        self.n_iter = int(n_iter)
        self.thetas = {k: v for k, v in params.items() if k.startswith("theta_")}
        self.contour_threshold = contour_threshold
        self.log_w_appearance = nn.Parameter(torch.tensor(math.log(w_appearance)))
        self.log_w_smoothness = nn.Parameter(torch.tensor(math.log(w_smoothness)))
        self.log_w_edge = nn.Parameter(torch.tensor(math.log(w_edge)))
        potts = 1.0 - torch.eye(n_labels)
        if learn_compatibility:
            self.compatibility = nn.Parameter(potts)
        else:
            self.register_buffer("compatibility", potts)

    def forward(
        self, unary: torch.Tensor, image: torch.Tensor, contours: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return the marginals ``(N, L, H, W)`` after ``n_iter`` mean-field steps."""
        if not isinstance(unary, torch.Tensor) or unary.ndim != 4:
            raise ValueError(
                f"`unary` must be an (N, L, H, W) tensor, got "
                f"{tuple(unary.shape) if isinstance(unary, torch.Tensor) else type(unary).__name__}"
            )
        n, n_lab, h, w = unary.shape
        if n_lab != self.n_labels:
            raise ValueError(
                f"`unary` has {n_lab} labels, the module was built for {self.n_labels}"
            )
        if not isinstance(image, torch.Tensor) or tuple(image.shape) != (n, 3, h, w):
            raise ValueError(
                f"`image` must be an (N, 3, H, W) = {(n, 3, h, w)} tensor, got "
                f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}"
            )
        if contours is not None and tuple(contours.shape) != (n, h, w):
            raise ValueError(
                f"`contours` must be (N, H, W) = {(n, h, w)}, got {tuple(contours.shape)}"
            )
        outs = []
        weights = [self.log_w_appearance.exp(), self.log_w_smoothness.exp(), self.log_w_edge.exp()]
        for b in range(n):
            _check_unary(unary[b])
            img = _image_to_numpy(image[b], h, w)
            regions = None if contours is None else _regions(contours[b], h, w, self.contour_threshold)
            specs = _kernel_specs(img, regions, self.thetas)
            kernels = [_TorchKernel(f, blk, unary.device, unary.dtype) for f, blk, _ in specs]
            compat = self.compatibility.to(unary.dtype)
            q, _ = _mean_field_torch(
                unary[b].reshape(n_lab, h * w).t(),
                kernels,
                weights[: len(kernels)],
                compat,
                self.n_iter,
            )
            outs.append(q.t().reshape(n_lab, h, w))
        return torch.stack(outs)
