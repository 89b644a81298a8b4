"""Permutohedral lattice: against brute-force Gaussian filtering, exact block cuts, symmetry/PSD."""

from __future__ import annotations

import crf_naive as naive
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.crf.lattice import build_lattice, lattice_filter
from deep.crf.lattice_torch import build_lattice_torch


def _grid_features(h, w, sigma):
    r, c = np.mgrid[0:h, 0:w]
    return np.stack([r.ravel(), c.ravel()], 1) / sigma


def _two_tone_image(h, w, rng):
    img = np.full((h, w, 3), 0.2)
    img[:, w // 2 :] = 0.7
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)


def test_single_point_and_constant():
    """One point filters to itself; a constant signal stays constant (normalised filter)."""
    out = lattice_filter(np.array([[0.3, -1.2]]), np.array([[2.5]]))
    np.testing.assert_allclose(out, [[2.5]], rtol=1e-6)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(50, 3))
    np.testing.assert_allclose(lattice_filter(f, np.full((50, 2), 7.0)), 7.0, rtol=1e-5)


def test_barycentric_weights_are_a_partition_of_unity():
    rng = np.random.default_rng(1)
    for d in (1, 2, 5, 6):
        lat = build_lattice(rng.normal(size=(200, d)) * 3)
        assert lat.offsets.shape == (200, d + 1)
        assert (lat.bary >= -1e-6).all()
        np.testing.assert_allclose(lat.bary.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("sigma", [1.5, 3.0])
def test_position_kernel_matches_brute_force(sigma):
    """2-D spatial Gaussian on a 16x20 grid: the lattice tracks the exact filter.

    The permutohedral blur is a known approximation of the Gaussian (Adams et al. 2010, sec. 4);
    on white-noise input (the hardest case) we accept a mean error of 0.01 and a max of 0.06 on
    values in [0, 1]; on a smooth ramp the error is far smaller.
    """
    rng = np.random.default_rng(0)
    f = _grid_features(16, 20, sigma)
    v = rng.random((320, 2))
    got = lattice_filter(f, v)
    want = naive.naive_filter(f, v)
    err = np.abs(got - want)
    assert err.mean() < 0.01 and err.max() < 0.06
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.97
    # a linear ramp is (nearly) reproduced away from the borders, where any symmetric kernel
    # returns the ramp itself; near the borders the truncated kernels differ more
    ramp = (f[:, :1] + 0.5 * f[:, 1:]) * sigma / 20
    got, want = lattice_filter(f, ramp), naive.naive_filter(f, ramp)
    r, c = np.mgrid[0:16, 0:20]
    inner = (
        (r >= 2 * sigma) & (r < 16 - 2 * sigma) & (c >= 2 * sigma) & (c < 20 - 2 * sigma)
    ).ravel()
    np.testing.assert_allclose(got[inner], want[inner], atol=0.01)
    np.testing.assert_allclose(got, want, atol=0.05)


def test_bilateral_kernel_matches_brute_force():
    """5-D bilateral (position / 5, 255 rgb / 13) on a two-tone 16x20 image."""
    rng = np.random.default_rng(0)
    img = _two_tone_image(16, 20, rng)
    f = np.concatenate([_grid_features(16, 20, 5.0), img.reshape(-1, 3) * 255 / 13], 1)
    v = rng.random((320, 3))
    got = lattice_filter(f, v)
    want = naive.naive_filter(f, v)
    err = np.abs(got - want)
    assert err.mean() < 0.01 and err.max() < 0.06
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.93
    # the edge is respected: averaging never mixes the two tones
    side = np.repeat((np.arange(20) >= 10)[None], 16, 0).ravel().astype(float)
    np.testing.assert_allclose(lattice_filter(f, side), side[:, None], atol=1e-3)


def test_blocks_cut_the_kernel_exactly():
    """Points in different blocks never exchange mass, even with identical features."""
    rng = np.random.default_rng(3)
    f = rng.normal(size=(60, 2)) * 0.3  # all points close: a wide kernel
    blocks = (np.arange(60) % 3).astype(np.int64)
    vals = blocks.astype(float)
    out = lattice_filter(f, vals, blocks)
    np.testing.assert_allclose(out[:, 0], vals, atol=1e-6)
    for b in range(3):  # same result as filtering each block alone
        v = rng.random((60, 2))
        alone = lattice_filter(f[blocks == b], v[blocks == b])
        np.testing.assert_allclose(lattice_filter(f, v, blocks)[blocks == b], alone, atol=1e-5)


def test_operator_is_symmetric_psd():
    """K = S M M^T S^T: symmetric and positive semi-definite (checked on its explicit matrix)."""
    rng = np.random.default_rng(4)
    for d in (2, 5):
        f = rng.normal(size=(40, d)) * 1.5
        lat = build_lattice(f)
        k = lat.filter(np.eye(40, dtype=np.float32)).astype(np.float64)
        np.testing.assert_allclose(k, k.T, atol=1e-6)
        assert np.linalg.eigvalsh((k + k.T) / 2).min() > -1e-5


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    spread=st.floats(0.1, 5.0),
)
def test_properties(n, d, seed, spread):
    """Normalised output is a convex combination of the inputs; the operator is symmetric."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d)) * spread
    v = rng.random((n, 1))
    out = lattice_filter(f, v)
    assert out.min() >= v.min() - 1e-5 and out.max() <= v.max() + 1e-5
    lat = build_lattice(f)
    a = rng.random((n, 1)).astype(np.float32)
    b = rng.random((n, 1)).astype(np.float32)
    np.testing.assert_allclose((a * lat.filter(b)).sum(), (b * lat.filter(a)).sum(), rtol=1e-4)


@pytest.mark.parametrize("with_blocks", [False, True])
def test_torch_lattice_equals_numba(device, with_blocks):
    """The torch lattice builds the same vertices and filters to the same values."""
    rng = np.random.default_rng(5)
    img = _two_tone_image(12, 14, rng)
    f = np.concatenate([_grid_features(12, 14, 4.0), img.reshape(-1, 3) * 255 / 10], 1)
    blocks = (np.arange(168) % 14 >= 7).astype(np.int64) if with_blocks else None
    v = rng.random((168, 4)).astype(np.float32)
    lat = build_lattice(f, blocks)
    tl = build_lattice_torch(
        torch.tensor(f, device=device),
        None if blocks is None else torch.tensor(blocks, device=device),
    )
    assert tl.n_vertices == lat.n_vertices
    got = tl.filter(torch.tensor(v, device=device)).cpu().numpy()
    np.testing.assert_allclose(got, lat.filter(v), rtol=1e-5, atol=1e-5)


def test_numba_lattice_wrapped_for_torch():
    from deep.crf.lattice_torch import torch_lattice_from_numba

    rng = np.random.default_rng(6)
    f = rng.normal(size=(80, 3)) * 2
    v = rng.random((80, 2)).astype(np.float32)
    lat = build_lattice(f)
    got = torch_lattice_from_numba(lat).filter(torch.tensor(v)).numpy()
    np.testing.assert_allclose(got, lat.filter(v), rtol=1e-5, atol=1e-6)


def test_torch_lattice_wide_keys_fallback():
    """Keys too wide to pack into 62 bits take the row-wise unique path, with the same result."""
    rng = np.random.default_rng(7)
    f = rng.normal(size=(60, 5)) * 2
    f[:30] += 1e5  # two far-apart clusters: a huge coordinate span per dimension
    v = rng.random((60, 2)).astype(np.float32)
    lat = build_lattice(f)
    tl = build_lattice_torch(torch.tensor(f))
    assert tl.n_vertices == lat.n_vertices
    np.testing.assert_allclose(
        tl.filter(torch.tensor(v)).numpy(), lat.filter(v), rtol=1e-4, atol=1e-5
    )
