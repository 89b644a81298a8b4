"""Tests of bottomup.cues against naive references and hand-computed cases."""

from __future__ import annotations

import naive_cues
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bottomup.cues import (
    bin_smoothing_kernel,
    derivative_filter,
    disc_slices,
    hist_gradient,
    kmeans,
    local_cues,
    parabola_smooth,
    quantize,
    rgb_to_lab,
    savgol_kernel,
    texton_filter_bank,
    textons,
)


def test_lab_white_black_and_red():
    lab = rgb_to_lab(np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]))
    # white: L = 100, a = b = 0 -> (1, 73/168, 73/168); black: L = 0
    np.testing.assert_allclose(lab[0, 0], [1.0, 73 / 168, 73 / 168], atol=2e-3)
    np.testing.assert_allclose(lab[0, 1], [0.0, 73 / 168, 73 / 168], atol=1e-9)
    # red, by hand: gamma 2.5 leaves 1 -> XYZ = first column of the matrix
    x, y, z = 0.412453 / 0.950456, 0.212671, 0.019334 / 1.088754
    f = np.cbrt([x, y, z])
    expect = [
        (116 * f[1] - 16) / 100,
        (500 * (f[0] - f[1]) + 73) / 168,
        (200 * (f[1] - f[2]) + 73) / 168,
    ]
    np.testing.assert_allclose(lab[0, 2], np.clip(expect, 0, 1), atol=1e-9)


def test_lab_gamma_is_2_5_not_srgb():
    lab = rgb_to_lab(np.full((1, 1, 3), 0.5))
    y = 0.5**2.5  # Y of a gray: the matrix rows sum to the white point
    np.testing.assert_allclose(lab[0, 0, 0], (116 * np.cbrt(y) - 16) / 100, atol=1e-4)


def test_quantize_edges():
    assert quantize(np.array([0.0, 0.039, 0.04, 0.999, 1.0])).tolist() == [0, 0, 1, 24, 24]


def test_disc_slices_cover_disc_and_use_half_pixel_offset():
    dr, dc, s = disc_slices(3, 8)
    assert len(dr) == 29  # integer points with dr^2 + dc^2 <= 9
    # offset (0, 0): angle atan2(0.5, 0.5) = pi/4 -> slice 2
    assert s[(dr == 0) & (dc == 0)][0] == 2
    # left half of orientation 0 (slices 0..7) is the right-hand columns dc >= 0
    assert set(dc[s < 8].tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "radius,n_bins,sigma,kernel",
    [
        (r, n, s, k)
        for r, n, s in [(1, 3, 0.0), (2, 5, 0.0), (3, 6, 1.25), (4, 25, 2.5), (3, 40, 0.0)]
        for k in ["update", "pixel", "sparse"]
        if not (k == "sparse" and s > 0)
    ],
)
def test_hist_gradient_matches_naive(radius, n_bins, sigma, kernel):
    rng = np.random.default_rng(radius)
    lab = rng.integers(0, n_bins, size=(9, 11)).astype(np.int32)
    lab[:, 6:] = rng.integers(0, max(1, n_bins // 2), size=(9, 5))  # some structure
    fast = hist_gradient(lab, radius, n_bins=n_bins, bin_sigma=sigma, _kernel=kernel)
    ref = naive_cues.half_disc_chi2(lab, radius, n_bins, 8, sigma)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("step", [2, 3])
def test_hist_gradient_step_is_exact_on_the_sampled_grid(step):
    lab = np.random.default_rng(step).integers(0, 6, size=(13, 16)).astype(np.int32)
    full = hist_gradient(lab, 3, n_bins=6, bin_sigma=1.25)
    coarse = hist_gradient(lab, 3, n_bins=6, bin_sigma=1.25, step=step)
    np.testing.assert_allclose(
        coarse[:, ::step, ::step], full[:, ::step, ::step], rtol=1e-5, atol=1e-6
    )
    # bilinear in between: the midpoint of two samples is their mean
    mid = 0.5 * (coarse[:, 0, 0] + coarse[:, 0, step])
    if step == 2:
        np.testing.assert_allclose(coarse[:, 0, 1], mid, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    radius=st.integers(1, 3),
    n_bins=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_hist_gradient_property_matches_naive(h, w, radius, n_bins, seed):
    lab = np.random.default_rng(seed).integers(0, n_bins, size=(h, w)).astype(np.int32)
    fast = hist_gradient(lab, radius, n_bins=n_bins)
    ref = naive_cues.half_disc_chi2(lab, radius, n_bins)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


def test_hist_gradient_step_edges_orientation():
    vert = np.zeros((21, 21), dtype=np.int32)
    vert[:, 11:] = 1  # vertical edge between columns 10 and 11
    g = hist_gradient(vert, 5, n_bins=2)
    assert int(np.argmax(g[:, 10, 11])) == 0  # theta = 0 is a vertical edge (FACTS A.2)
    # the dividing diameter passes through the corner (r - 1/2, c - 1/2): peak at column 11
    assert int(np.argmax(g[0, 10, :])) == 11
    assert g[0, 10, 11] == pytest.approx(8.0, rel=1e-6)  # halves fully different: chi2 = O
    hori = vert.T.copy()
    assert int(np.argmax(hist_gradient(hori, 5, n_bins=2)[:, 11, 10])) == 4  # pi/2
    rr, cc = np.mgrid[:21, :21]
    diag = (rr > cc).astype(np.int32)  # edge along (1, 1) in (row, col): theta = pi/4
    assert int(np.argmax(hist_gradient(diag, 5, n_bins=2)[:, 10, 10])) == 2


def test_hist_gradient_constant_is_zero_and_errors():
    np.testing.assert_allclose(
        hist_gradient(np.zeros((6, 6), dtype=np.int32), 5, n_bins=4), 0, atol=1e-12
    )
    # radius 3 has two empty slices (9 and 13): orientation 0 compares 8 with 6 unit slices, so
    # a flat image gives 0.5 * 2^2 / 14 = 1/7 there, as the release does (FACTS A.5)
    flat3 = hist_gradient(np.zeros((6, 6), dtype=np.int32), 3, n_bins=4)
    np.testing.assert_allclose(flat3[0], 1 / 7, rtol=1e-6)
    with pytest.raises(ValueError, match="n_bins"):
        hist_gradient(np.full((4, 4), 5), 2, n_bins=3)
    with pytest.raises(ValueError, match="radius"):
        hist_gradient(np.zeros((4, 4), dtype=int), 0)
    with pytest.raises(ValueError, match="integer"):
        hist_gradient(np.zeros((4, 4)), 2)


def test_bin_smoothing_kernel_taps():
    assert bin_smoothing_kernel(2.5).shape == (17,)
    assert bin_smoothing_kernel(1.25).shape == (9,)
    assert bin_smoothing_kernel(0).tolist() == [1.0]


@pytest.mark.parametrize("radius", [3, 5])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 5])
def test_parabola_smooth_matches_least_squares(radius, k):
    rng = np.random.default_rng(k)
    z = rng.random((8, 17, 19))
    theta = k * np.pi / 8
    fast = parabola_smooth(z, radius)[k]
    ref = naive_cues.parabola_fit(z[k], radius, theta)
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(fast[ok], ref[ok], rtol=1e-4, atol=1e-5)


def test_parabola_reproduces_parabola_across_edge():
    rr, cc = np.mgrid[:31, :31].astype(float)
    z = 0.3 + 0.01 * (cc - 15) ** 2  # a parabola across a vertical edge (theta = 0)
    out = parabola_smooth(np.stack([z] * 8), 5)
    np.testing.assert_allclose(out[0, 10:21, 10:21], z[10:21, 10:21], atol=1e-4)
    k = savgol_kernel(5, 0.0)
    assert k.shape == (11, 11) and np.allclose(k, k[::-1, ::-1])


def test_filter_bank_shapes_and_normalisation():
    bank = texton_filter_bank()
    assert len(bank) == 34
    assert bank[0].shape == (13, 13) and bank[17].shape == (19, 19)
    for f in bank:
        assert abs(f.sum()) < 1e-12 and abs(np.abs(f).sum() - 1) < 1e-12
    d = derivative_filter(0.0)
    assert d.shape == (7, 7)
    assert np.allclose(d, -d[:, ::-1])  # theta = 0 differentiates across columns


def test_kmeans_and_textons_are_seeded():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))])
    c = kmeans(x, 2, rng=1)
    assert sorted(np.round(c[:, 0]).tolist()) == [0.0, 5.0]
    gray = np.random.default_rng(3).random((30, 25))
    a = textons(gray, 8, rng=4)
    b = textons(gray, 8, rng=4)
    assert a.shape == gray.shape and a.dtype == np.int32
    assert np.array_equal(a, b) and a.max() < 8
    assert np.array_equal(np.unique(a), np.arange(a.max() + 1))  # dense ids


@pytest.mark.parametrize("coarse_to_fine", [False, True])
def test_kmeans_matches_naive_lloyd(coarse_to_fine):
    # 300 points in 5 blobs, 8 centres: several stages (16, 32, ... 256, 300) when coarse to fine
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(m, 0.3, (60, 3)) for m in range(5)])
    got = kmeans(x, 8, max_num_iter=10, coarse_to_fine=coarse_to_fine, rng=11)
    ref = naive_cues.kmeans(x, 8, 10, 11, coarse_to_fine)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_quality_textons_are_fit_coarse_to_fine(monkeypatch):
    from bottomup.contours.gpb import PRESETS, gpb

    assert PRESETS["quality"]["texton_coarse_to_fine"] is True
    assert all(not PRESETS[p].get("texton_coarse_to_fine", False) for p in ("balanced", "fast", "medium"))
    import importlib

    tex = importlib.import_module("bottomup.cues.textons")
    seen = []
    real = tex.kmeans
    monkeypatch.setattr(tex, "kmeans", lambda *a, **k: seen.append(k["coarse_to_fine"]) or real(*a, **k))
    img = np.random.default_rng(0).random((32, 34, 3))
    gpb(img, "quality")
    gpb(img, "fast")
    assert seen == [True, False]


def test_textons_of_one_filter_scale_use_that_bank_only(monkeypatch):
    import importlib

    mod = importlib.import_module("bottomup.cues.textons")  # the module (the package exports the function)
    seen = []
    real = mod.filter_responses
    monkeypatch.setattr(mod, "filter_responses", lambda img, bank: seen.append(len(bank)) or real(img, bank))
    gray = np.random.default_rng(3).random((30, 25))
    one = textons(gray, 8, sigmas=(2.0,), rng=4)
    textons(gray, 8, rng=4)
    assert seen == [17, 34]  # one scale: 8 even + 8 odd + centre-surround
    assert one.shape == gray.shape and one.max() < 8
    # a vertical step: every texton boundary of the one-scale map lies near the step
    step = np.zeros((30, 40))
    step[:, 20:] = 1.0
    lab = textons(step, 4, sigmas=(2.0,), rng=0)
    cols = np.nonzero(np.any(lab[:, 1:] != lab[:, :-1], axis=0))[0]
    assert cols.min() >= 20 - 8 and cols.max() <= 20 + 8


def test_local_cues_shapes_and_gray():
    img = np.zeros((24, 26, 3))
    img[:, 13:] = [0.9, 0.2, 0.1]
    cues = local_cues(
        img, radii_l=(2, 3, 4), radii_ab=(2, 3, 4), radii_t=(2, 3, 4), n_textons=4, rng=0
    )
    assert cues.stack.shape == (12, 8, 24, 26)
    assert cues.names[0] == "L2" and cues.radii[-1] == 4
    assert int(np.argmax(cues.stack[0, :, 12, 13])) == 0
    gray = np.repeat(img[..., :1], 3, axis=2)
    gc = local_cues(
        gray, radii_l=(2, 3, 4), radii_ab=(2, 3, 4), radii_t=(2, 3, 4), n_textons=4, rng=0
    )
    assert np.all(gc.stack[3:9] == 0)  # a and b carry nothing for gray images


def _doc_params(doc):
    lines = doc.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Parameters")
    except StopIteration:
        return []
    names = []
    for ln in lines[start + 2 :]:
        s = ln.strip()
        if s in ("Returns", "Raises", "Notes", "References", "Examples", "See Also", "Yields"):
            break
        if ln.startswith("    ") and not ln.startswith("        ") and " : " in s:
            names.extend(n.strip() for n in s.split(" : ")[0].split(","))
    return names


def test_public_signatures_match_their_docstrings():
    import inspect

    import bottomup.contours as contours
    import bottomup.cues as cues

    checked = 0
    for mod in (cues, contours):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not inspect.isfunction(obj) or not obj.__doc__ or "Parameters" not in obj.__doc__:
                continue
            params = [p for p in inspect.signature(obj).parameters if not p.startswith("_")]
            assert _doc_params(obj.__doc__) == params, name
            checked += 1
    assert checked >= 15


def test_threaded_filter_loops_do_not_depend_on_the_thread_count():
    # filter banks and parabola fits run one 2-D filter per thread (bottomup._threads); every
    # task writes its own slice, so one thread and several give the same bytes
    import numba

    from bottomup.cues.filters import filter_responses, texton_filter_bank
    from bottomup.cues.smoothing import parabola_smooth

    rng = np.random.default_rng(3)
    img = rng.random((40, 37))
    stack = rng.random((8, 40, 37))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = filter_responses(img, texton_filter_bank()), parabola_smooth(stack, 5)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = filter_responses(img, texton_filter_bank()), parabola_smooth(stack, 5)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
    # and against a plain per-filter loop
    import cv2

    f = texton_filter_bank()[5]
    ref = cv2.filter2D(img.astype(np.float32), -1, np.ascontiguousarray(f[::-1, ::-1], np.float32),
                       borderType=cv2.BORDER_REFLECT)
    np.testing.assert_array_equal(one[0][5], ref)


def test_thread_map_runs_every_task_and_reraises():
    from bottomup._threads import thread_map

    seen = np.zeros(50, dtype=np.int64)

    def task(i):
        seen[i] += 1
        if i == 7:
            raise RuntimeError("task 7 failed")

    with pytest.raises(RuntimeError, match="task 7"):
        thread_map(task, 50)
    np.testing.assert_array_equal(seen, 1)  # all ran, once, before the error surfaced


@pytest.mark.parametrize("step", [1, 2])
def test_hist_gradient_writes_into_out(step):
    lab = np.random.default_rng(5).integers(0, 6, size=(15, 17)).astype(np.int32)
    ref = hist_gradient(lab, 3, n_bins=6, bin_sigma=1.25, step=step)
    out = np.full((8, 15, 17), -1.0, dtype=np.float32)
    got = hist_gradient(lab, 3, n_bins=6, bin_sigma=1.25, step=step, out=out)
    assert got is out
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError, match="`out` must be a C-contiguous float32"):
        hist_gradient(lab, 3, n_bins=6, out=np.zeros((8, 15, 17)))
    with pytest.raises(ValueError, match="shape"):
        hist_gradient(lab, 3, n_bins=6, out=np.zeros((8, 15, 16), np.float32))
