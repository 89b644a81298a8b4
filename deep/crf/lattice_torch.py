"""Permutohedral lattice in pure torch (any device, differentiable in the filtered values).

The same lattice as :mod:`deep.crf.lattice` (same elevation, same enclosing simplices, same
symmetric blur ``B = C_0 ... C_d C_d^T ... C_0^T``), built with vectorised tensor operations
(``torch.unique`` + ``searchsorted`` replace the hash table) so it runs on CUDA; the splat is an
``index_add_``, the blur ``2 (d + 1)`` gathers, the slice a gather. Autograd flows through the
values and the (normalised) splat/slice weights, not through the features (kernel bandwidths are
fixed hyper-parameters).

References
----------
.. [1] A. Adams, J. Baek, M. A. Davis, "Fast High-Dimensional Filtering Using the Permutohedral
       Lattice", Computer Graphics Forum 29(2), 2010.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["TorchLattice", "build_lattice_torch", "torch_lattice_from_numba"]


@dataclass(frozen=True)
class TorchLattice:
    """A permutohedral lattice over ``N`` points on one device.

    Attributes
    ----------
    offsets : (N, d+1) LongTensor
        Vertex index of each point's simplex vertices.
    bary : (N, d+1) Tensor
        Barycentric weights.
    nb_minus, nb_plus : (d+1, V+1) LongTensor
        Neighbour vertex one step back / forward along each direction; ``V`` (the index of an
        always-zero sentinel row) where the vertex is absent.
    """

    offsets: torch.Tensor
    bary: torch.Tensor
    nb_minus: torch.Tensor
    nb_plus: torch.Tensor

    @property
    def n_vertices(self) -> int:
        """Number of lattice vertices ``V``."""
        return self.nb_minus.shape[1] - 1

    @property
    def dim(self) -> int:
        """Feature dimension ``d``."""
        return self.offsets.shape[1] - 1

    def filter(self, values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Return ``S B S^T values`` for ``values`` (N, C); ``weights`` (N, d+1) replace bary."""
        w = self.bary if weights is None else weights
        w = w.to(values.dtype)
        n, n_ch = values.shape
        contrib = (values.unsqueeze(1) * w.unsqueeze(2)).reshape(-1, n_ch)
        lat = values.new_zeros(self.n_vertices + 1, n_ch)
        lat = lat.index_add(0, self.offsets.reshape(-1), contrib)
        for j in range(self.dim + 1):
            lat = 0.5 * (lat + lat[self.nb_minus[j]])
        for j in range(self.dim, -1, -1):
            lat = 0.5 * (lat + lat[self.nb_plus[j]])
        return (lat[self.offsets] * w.unsqueeze(2)).sum(1)


def _elevate(feat: torch.Tensor, block: torch.Tensor):
    n, d = feat.shape
    dp1 = d + 1
    inv_std = math.sqrt(2.0 / 3.0) * dp1
    i = torch.arange(1, d + 1, device=feat.device, dtype=feat.dtype)
    cf = feat * (inv_std / torch.sqrt(i * (i + 1.0)))  # cf[:, i-1]
    # sm_i = sum_{k > i} cf_k; elev[i] = sm_i - i cf_i (i = 1..d); elev[0] = sum cf
    rev = torch.flip(torch.cumsum(torch.flip(cf, [1]), 1), [1])  # sum_{k >= i}
    sm = rev - cf
    elev = torch.empty(n, dp1, dtype=feat.dtype, device=feat.device)
    elev[:, 1:] = sm - i * cf
    elev[:, 0] = rev[:, 0]
    v = elev / dp1
    up = torch.ceil(v) * dp1
    down = torch.floor(v) * dp1
    rem0 = torch.where(up - elev < elev - down, up, down)
    s = torch.round(rem0 / dp1).sum(1, keepdim=True).long()
    di = elev - rem0
    a = di.unsqueeze(2)  # i
    b = di.unsqueeze(1)  # j
    idx = torch.arange(dp1, device=feat.device)
    upper = idx.unsqueeze(1) < idx.unsqueeze(0)  # j > i
    rank = ((b > a) & upper).sum(2) + (
        (b >= a) & ~upper & (idx.unsqueeze(1) != idx.unsqueeze(0))
    ).sum(2)
    rem0 = rem0.long()
    pos = s > 0
    neg = s < 0
    hi = rank >= dp1 - s
    lo = rank < -s
    rem0 = torch.where(pos & hi, rem0 - dp1, rem0)
    rem0 = torch.where(neg & lo, rem0 + dp1, rem0)
    rank = torch.where(
        pos,
        torch.where(hi, rank + s - dp1, rank + s),
        torch.where(neg, torch.where(lo, rank + dp1 + s, rank + s), rank),
    )
    vb = (elev - rem0.to(feat.dtype)) / dp1
    bb = torch.zeros(n, dp1 + 1, dtype=feat.dtype, device=feat.device)
    bb.scatter_add_(1, d - rank, vb)
    bb.scatter_add_(1, d + 1 - rank, -vb)
    bb[:, 0] += 1.0 + bb[:, dp1]
    bary = bb[:, :dp1]
    r = torch.arange(dp1, device=feat.device).view(1, dp1, 1)
    rk = rank[:, None, :d]
    base = rem0[:, None, :d] + r
    coords = torch.where(rk <= d - r, base, base - dp1)  # (N, d+1, d)
    keys = torch.cat([coords, block.view(n, 1, 1).expand(n, dp1, 1)], 2)
    return keys, bary


def _pack(keys: torch.Tensor, lo: torch.Tensor, bits: list[int]) -> torch.Tensor:
    packed = torch.zeros(keys.shape[0], dtype=torch.int64, device=keys.device)
    for k, nb in enumerate(bits):
        packed = (packed << nb) | (keys[:, k] - lo[k])
    return packed


def build_lattice_torch(features: torch.Tensor, blocks: torch.Tensor | None = None) -> TorchLattice:
    """Build the permutohedral lattice of ``features`` (N, d), scaled to unit standard deviation.

    Parameters
    ----------
    features : (N, d) Tensor
        Features divided by their Gaussian standard deviations (float64 recommended).
    blocks : (N,) LongTensor, optional
        Region id per point; points of different regions never interact.

    Returns
    -------
    lattice : TorchLattice
        On ``features.device``; ``bary`` in ``features.dtype``.
    """
    feat = features.detach()
    n, d = feat.shape
    dp1 = d + 1
    blk = (
        torch.zeros(n, dtype=torch.int64, device=feat.device)
        if blocks is None
        else blocks.to(feat.device, torch.int64)
    )
    keys, bary = _elevate(feat, blk)
    flat = keys.reshape(-1, dp1)
    lo = flat.min(0).values - dp1
    span = flat.max(0).values + dp1 - lo + 1
    bits = [max(1, int(math.ceil(math.log2(int(x) + 1)))) for x in span.tolist()]
    steps = []
    for j in range(dp1):
        for sign in (-1, 1):
            delta = torch.full((dp1,), sign, dtype=torch.int64, device=feat.device)
            if j < d:
                delta[j] = -sign * d
            delta[d] = 0
            steps.append(delta)
    if sum(bits) <= 62:
        packed = _pack(flat, lo, bits)
        uniq, inv = torch.unique(packed, return_inverse=True)
        n_vertices = uniq.numel()
        # unpack the vertex keys to find their neighbours
        vkeys = torch.empty(n_vertices, dp1, dtype=torch.int64, device=feat.device)
        rest = uniq.clone()
        for k in range(dp1 - 1, -1, -1):
            vkeys[:, k] = (rest & ((1 << bits[k]) - 1)) + lo[k]
            rest = rest >> bits[k]
        nbs = []
        for delta in steps:
            q = _pack(vkeys + delta, lo, bits)
            pos = torch.searchsorted(uniq, q).clamp(max=n_vertices - 1)
            nbs.append(torch.where(uniq[pos] == q, pos, torch.full_like(pos, n_vertices)))
    else:  # too wide to pack: row-wise unique of vertices and their neighbours together
        vkeys, inv = torch.unique(flat, dim=0, return_inverse=True)
        n_vertices = vkeys.shape[0]
        allk = torch.cat([vkeys] + [vkeys + delta for delta in steps], 0)
        u2, inv2 = torch.unique(allk, dim=0, return_inverse=True)
        lut = torch.full((u2.shape[0],), n_vertices, dtype=torch.int64, device=feat.device)
        lut[inv2[:n_vertices]] = torch.arange(n_vertices, device=feat.device)
        nbs = list(lut[inv2[n_vertices:]].view(len(steps), n_vertices))
    sentinel = torch.full((1,), n_vertices, dtype=torch.int64, device=feat.device)
    nb_minus = torch.stack([torch.cat([nbs[2 * j], sentinel]) for j in range(dp1)])
    nb_plus = torch.stack([torch.cat([nbs[2 * j + 1], sentinel]) for j in range(dp1)])
    return TorchLattice(inv.view(n, dp1), bary, nb_minus, nb_plus)


def torch_lattice_from_numba(lattice, device=None) -> TorchLattice:
    """Wrap a numba-built :class:`deep.crf.lattice.Lattice` as a :class:`TorchLattice`.

    The two builders produce the same vertices (in a different order), so filtering agrees to
    rounding; this one is much faster on the CPU.
    """
    n_vertices = lattice.n_vertices

    def nb(a):
        t = torch.as_tensor(a.astype("int64"), device=device)
        t = torch.where(t < 0, torch.full_like(t, n_vertices), t)
        sentinel = torch.full((t.shape[0], 1), n_vertices, dtype=torch.int64, device=t.device)
        return torch.cat([t, sentinel], 1)

    return TorchLattice(
        torch.as_tensor(lattice.offsets.astype("int64"), device=device),
        torch.as_tensor(lattice.bary, device=device).to(torch.float64),
        nb(lattice.nb_minus),
        nb(lattice.nb_plus),
    )
