"""dense_crf (numba path): oracle mean field, normalisation, energy descent, edges, bad input."""

from __future__ import annotations

import crf_naive as naive
import numpy as np
import pytest

from deep.crf import contours_to_regions, dense_crf, unary_from_probabilities


def _quadrants(seed=0, noise_rate=0.35):
    """skimage-style 20x21 four-quadrant image, its truth and noisy 3-label unaries."""
    rng = np.random.default_rng(seed)
    h, w, n_lab = 20, 21, 3
    img = np.zeros((h, w, 3))
    img[:10, :10] = [0.9, 0.1, 0.1]
    img[:10, 10:] = [0.1, 0.9, 0.1]
    img[10:, :10] = [0.1, 0.1, 0.9]
    img[10:, 10:] = [0.9, 0.1, 0.1]
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    truth = np.zeros((h, w), int)
    truth[:10, 10:] = 1
    truth[10:, :10] = 2
    noisy = np.where(rng.random((h, w)) < noise_rate, rng.integers(0, n_lab, (h, w)), truth)
    prob = np.full((n_lab, h, w), 0.2)
    for lab in range(n_lab):
        prob[lab][noisy == lab] = 0.6
    return img, truth, unary_from_probabilities(prob)


def test_smoke_shapes_and_normalisation():
    img, truth, u = _quadrants()
    q = dense_crf(u, img)
    assert q.shape == u.shape and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-5)
    assert (q >= 0).all()


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"theta_alpha": 10.0, "w_appearance": 10.0, "theta_beta": 20.0},
        {"theta_alpha": 5.0, "theta_beta": 13.0},
    ],
)
def test_matches_brute_force_mean_field(kw):
    """Same marginals as O(N^2) mean field with exact Gaussians, within the lattice's error."""
    img, truth, u = _quadrants()
    q = dense_crf(u, img, **kw)
    qn = naive.naive_mean_field(u, img, **kw)
    assert np.abs(q - qn).mean() < 0.01
    assert (q.argmax(0) == qn.argmax(0)).mean() >= 0.99
    # and the CRF repairs the noisy unaries
    assert (u.argmin(0) == truth).mean() < 0.8
    assert (q.argmax(0) == truth).mean() >= 0.99


def test_compatibility_matches_brute_force():
    img, _, u = _quadrants(seed=1)
    mu = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.5], [2.0, 0.5, 0.0]])
    q = dense_crf(u, img, compatibility=mu, theta_alpha=10.0)
    qn = naive.naive_mean_field(u, img, compatibility=mu, theta_alpha=10.0)
    # stronger couplings (mu up to 2) amplify the lattice's approximation error (Potts: 0.009 here)
    assert np.abs(q - qn).mean() < 0.02
    assert (q.argmax(0) == qn.argmax(0)).mean() >= 0.98
    np.testing.assert_allclose(
        dense_crf(u, img, compatibility=1 - np.eye(3)), dense_crf(u, img), atol=1e-5
    )


@pytest.mark.parametrize("seed", range(4))
def test_energy_never_increases(seed):
    """Parallel Potts mean field is a CCCP step on a PSD lattice operator: F(Q^t) is monotone."""
    rng = np.random.default_rng(seed)
    img = rng.random((15, 17, 3))
    u = rng.normal(0, 2, (4, 15, 17)).astype(np.float32)
    contours = (rng.random((15, 17)) < 0.2).astype(float)
    for kw in (
        {},
        {"w_appearance": 30.0, "theta_alpha": 8.0, "theta_beta": 30.0, "w_smoothness": 10.0},
        {"contours": contours, "w_edge": 20.0, "theta_edge": 5.0},
    ):
        _, e = dense_crf(u, img, n_iter=10, return_energy=True, **kw)
        assert e.shape == (11,)
        assert (np.diff(e) <= 1e-6 * np.abs(e).max()).all(), np.diff(e)


def test_n_iter_zero_is_softmax_and_shift_invariance():
    img, _, u = _quadrants()
    q0 = dense_crf(u, img, n_iter=0)
    e = np.exp(-u - (-u).max(0))
    np.testing.assert_allclose(q0, e / e.sum(0), atol=1e-6)
    # unary energies need not be normalised: a per-pixel offset changes nothing
    shift = np.random.default_rng(0).normal(0, 5, u.shape[1:]).astype(np.float32)
    np.testing.assert_allclose(dense_crf(u + shift, img), dense_crf(u, img), atol=1e-5)


def _split_scene():
    """Uniform grey 16x16 image; left half confidently label 0; right half 60 % weakly label 1."""
    h = w = 16
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 0.5)
    prob = np.zeros((2, h, w))
    prob[0, :, :8] = 0.9
    right_ones = rng.random((h, 8)) < 0.6
    prob[0, :, 8:] = np.where(right_ones, 0.3, 0.6)
    prob[1] = 1 - prob[0]
    cont = np.zeros((h, w))
    cont[:, 8] = 1.0
    return img, unary_from_probabilities(prob), cont


def test_edges_keep_regions_apart():
    """The image gives no cue; a contour between the halves lets the right half keep its label.

    The edge kernel adds region consistency to the (uncut) DeepLab kernels, so it has to outweigh
    the appearance kernel's pull from the confident half: w_edge = 15 here (10 is not enough).
    """
    img, u, cont = _split_scene()
    h, w = cont.shape
    kw = dict(w_appearance=4.0, theta_alpha=20.0, w_edge=15.0)
    plain = dense_crf(u, img, **kw).argmax(0)
    edged = dense_crf(u, img, contours=cont, **kw).argmax(0)
    assert (plain[:, 9:] == 0).mean() > 0.9  # the confident side invades through equal colours
    assert (edged[:, 9:] == 1).all() and (edged[:, :8] == 0).all()
    # a ucm2 with the same cut gives the same answer
    ucm2 = np.zeros((2 * h + 1, 2 * w + 1))
    ucm2[:, 2 * 8 + 1 + 1] = 1.0  # between pixel columns 8 and 9
    edged2 = dense_crf(u, img, contours=ucm2, **kw).argmax(0)
    assert (edged2[:, 9:] == 1).all() and (edged2[:, :8] == 0).all()
    # no contour above the threshold: the edge kernel is one big region, nothing is cut
    weak = dense_crf(u, img, contours=cont * 0.1, **kw).argmax(0)
    assert (weak[:, 9:] == 0).mean() > 0.9


def test_edge_kernel_is_cut_exactly():
    """With only the edge kernel, a region's marginals do not depend on the other region at all."""
    img, u, cont = _split_scene()
    kw = dict(w_appearance=0.0, w_smoothness=0.0, w_edge=5.0, theta_edge=100.0, contours=cont)
    q1 = dense_crf(u, img, **kw)
    u2 = u.copy()
    u2[:, :, :8] = u2[::-1, :, :8]  # flip the left region's unaries
    q2 = dense_crf(u2, img, **kw)
    regions = contours_to_regions(cont, cont.shape)
    right = regions == regions[0, -1]
    np.testing.assert_allclose(q1[:, right], q2[:, right], atol=1e-6)
    assert not np.allclose(q1[:, ~right], q2[:, ~right], atol=1e-2)


def test_contours_to_regions_tiny():
    cmap = np.zeros((4, 5))
    cmap[:, 2] = 0.8
    reg = contours_to_regions(cmap, (4, 5), threshold=0.5)
    assert reg.dtype == np.int32
    np.testing.assert_array_equal(reg[:, [0, 1]], 0)
    np.testing.assert_array_equal(reg[:, [3, 4]], 1)
    assert set(np.unique(reg[:, 2])) <= {0, 1}
    # below threshold: one region
    np.testing.assert_array_equal(contours_to_regions(cmap, (4, 5), threshold=0.9), 0)
    # all contour: one region, no crash
    np.testing.assert_array_equal(contours_to_regions(np.ones((3, 3)), (3, 3)), 0)
    # ucm2 layout: a closed square around the centre pixel of a 3x3 image
    ucm2 = np.zeros((7, 7))
    ucm2[2, 2:5] = ucm2[4, 2:5] = ucm2[2:5, 2] = ucm2[2:5, 4] = 0.6
    reg = contours_to_regions(ucm2, (3, 3), threshold=0.5)
    assert reg[1, 1] != reg[0, 0] and len(np.unique(reg)) == 2


def test_real_ucm2_regions(bsds_root):
    """The original gPb-owt-ucm of a BSDS val image cuts into a sensible number of regions."""
    from bottomup.io import read_ucm2

    path = sorted((bsds_root / "ucm2" / "val").glob("*.mat"))[0]
    ucm2 = read_ucm2(str(path))
    h, w = (ucm2.shape[0] - 1) // 2, (ucm2.shape[1] - 1) // 2
    coarse = contours_to_regions(ucm2, (h, w), threshold=0.3).max() + 1
    fine = contours_to_regions(ucm2, (h, w), threshold=0.05).max() + 1
    assert 1 <= coarse <= fine
    via_map = contours_to_regions(ucm2[2::2, 2::2], (h, w), threshold=0.05).max() + 1
    assert via_map >= 1


def test_dtype_support():
    """uint8 and float images holding the same colours give the same result; float64 unaries too."""
    img, _, u = _quadrants()
    img8 = (img * 255).round().astype(np.uint8)
    q = dense_crf(u, img8.astype(np.float64) / 255)
    q8 = dense_crf(u.astype(np.float64), img8)
    np.testing.assert_allclose(q8, q, atol=1e-5)


def test_one_label():
    img, _, u = _quadrants()
    q = dense_crf(u[:1], img)
    np.testing.assert_allclose(q, 1.0)


def test_bad_input():
    img, _, u = _quadrants()
    with pytest.raises(ValueError, match=r"`image` \(shape \(20, 22\)\) must have the same"):
        dense_crf(u, np.zeros((20, 22, 3)))
    with pytest.raises(ValueError, match=r"`unary` must be \(L, H, W\)"):
        dense_crf(u[0], img)
    bad = u.copy()
    bad[0, 3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        dense_crf(bad, img)
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        dense_crf(u.tolist(), img)
    with pytest.raises(ValueError, match="is empty"):
        dense_crf(u[:0], img)
    with pytest.raises(ValueError, match="w_appearance"):
        dense_crf(u, img, w_appearance=-1.0)
    with pytest.raises(ValueError, match="theta_beta"):
        dense_crf(u, img, theta_beta=0.0)
    with pytest.raises(ValueError, match="downscale"):
        dense_crf(u, img, max_pixels=100)
    with pytest.raises(ValueError, match="w_edge"):
        dense_crf(u, img, w_edge=float("nan"))
    with pytest.raises(ValueError, match="n_iter"):
        dense_crf(u, img, n_iter=-2)
    with pytest.raises(ValueError, match="compatibility"):
        dense_crf(u, img, compatibility=np.eye(2))
    with pytest.raises(ValueError, match="compatibility"):
        dense_crf(u, img, compatibility=np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="contours"):
        dense_crf(u, img, contours=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="contours"):
        dense_crf(u, img, contours=np.full(u.shape[1:], 2.0))
    with pytest.raises(ValueError, match="image"):
        dense_crf(u, img * 300)
    # probabilities that do not sum to one are refused with the fix in the message
    with pytest.raises(ValueError, match="sum to one"):
        unary_from_probabilities(np.full((3, 4, 4), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        unary_from_probabilities(np.full((2, 4, 4), 1.5))


@pytest.mark.parametrize(
    "name",
    [
        "dense_crf",
        "unary_from_probabilities",
        "contours_to_regions",
        "DenseCRF",
        "lattice_filter",
        "build_lattice",
    ],
)
def test_docstring_lists_every_parameter(name):
    """Each public signature matches its numpydoc Parameters section."""
    import inspect

    import deep.crf as m

    obj = getattr(m, name)
    doc = inspect.getdoc(obj)
    params = inspect.signature(obj).parameters
    section = doc.split("Parameters\n----------\n", 1)[1].split("\n\n")[0:50]
    text = "\n".join(section)
    for p in params:
        if p == "self":
            continue
        assert any(
            line.startswith(p) or f", {p}" in line.split(":")[0] for line in text.splitlines()
        ), (name, p)
