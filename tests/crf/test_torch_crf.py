"""Torch path and the trainable DenseCRF (CRF-as-RNN): parity with numba, gradients, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deep.crf import DenseCRF, dense_crf, unary_from_probabilities

TOL = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-6, 1e-6)}


def _scene(seed=0, h=14, w=15, n_lab=3, noise_rate=0.3):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3))
    img[:, : w // 3] = [0.8, 0.2, 0.1]
    img[:, w // 3 : 2 * w // 3] = [0.1, 0.7, 0.2]
    img[:, 2 * w // 3 :] = [0.2, 0.2, 0.9]
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    truth = np.zeros((h, w), int)
    truth[:, w // 3 : 2 * w // 3] = 1
    truth[:, 2 * w // 3 :] = 2
    noisy = np.where(rng.random((h, w)) < noise_rate, rng.integers(0, n_lab, (h, w)), truth)
    prob = np.full((n_lab, h, w), 0.25)
    for lab in range(n_lab):
        prob[lab][noisy == lab] = 0.5
    return img, truth, unary_from_probabilities(prob)


@pytest.mark.parametrize("with_contours", [False, True])
def test_torch_path_equals_numba_path(device, with_contours):
    img, _, u = _scene()
    cont = None
    if with_contours:
        cont = np.zeros(u.shape[1:])
        cont[:, 7] = 1.0
    kw = dict(theta_alpha=10.0, contours=cont)
    q_np, e_np = dense_crf(u, img, return_energy=True, **kw)
    q_t, e_t = dense_crf(torch.tensor(u, device=device), img, return_energy=True, **kw)
    assert isinstance(q_t, torch.Tensor) and q_t.device.type == device.type
    np.testing.assert_allclose(q_t.cpu().numpy(), q_np, atol=1e-4)
    np.testing.assert_allclose(e_t, e_np, rtol=1e-5)
    assert (np.diff(e_t) <= 1e-6 * np.abs(e_t).max()).all()
    # (3, H, W) tensor images are accepted as well
    q_t2 = dense_crf(torch.tensor(u, device=device), torch.tensor(img).permute(2, 0, 1), **kw)
    np.testing.assert_allclose(q_t2.cpu().numpy(), q_np, atol=1e-4)


def test_module_smoke_and_cardinality(device):
    img, _, u = _scene()
    crf = DenseCRF(3, n_iter=3, theta_alpha=10.0).to(device)
    ut = torch.tensor(np.stack([u, u[::-1].copy()]), device=device)
    it = torch.tensor(np.stack([img, img]), device=device).permute(0, 3, 1, 2)
    q = crf(ut, it)
    assert q.shape == (2, 3, 14, 15)
    rtol, atol = TOL[torch.float32]
    torch.testing.assert_close(q.sum(1), torch.ones(2, 14, 15, device=device), rtol=rtol, atol=atol)
    # one image of the batch equals the functional call with the same (Potts-initialised) parameters
    q0 = dense_crf(ut[0], img, n_iter=3, theta_alpha=10.0, compatibility=1 - np.eye(3))
    torch.testing.assert_close(q[0].detach(), q0, rtol=rtol, atol=atol)


def test_gradients_flow(device):
    img, truth, u = _scene()
    crf = DenseCRF(3, n_iter=3, theta_alpha=10.0).to(device)
    ut = torch.tensor(u[None], device=device, requires_grad=True)
    it = torch.tensor(img[None], device=device).permute(0, 3, 1, 2)
    q = crf(ut, it)
    loss = torch.nn.functional.nll_loss(
        torch.log(q + 1e-8), torch.tensor(truth[None], device=device)
    )
    loss.backward()
    assert crf.log_w_edge.grad is None  # no contours: the edge kernel is not used
    for name, g in (
        ("unary", ut.grad),
        ("w_app", crf.log_w_appearance.grad),
        ("w_smooth", crf.log_w_smoothness.grad),
        ("compat", crf.compatibility.grad),
    ):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name


def test_gradcheck(device):
    """Analytic gradients of the unrolled mean field (float64) match finite differences."""
    img, _, u = _scene(h=5, w=6)
    crf = DenseCRF(3, n_iter=2, theta_alpha=4.0, theta_beta=30.0).to(device).double()
    it = torch.tensor(img[None], device=device).permute(0, 3, 1, 2)
    ut = torch.tensor(u[None], dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: crf(x, it), (ut,), eps=1e-6, atol=1e-5)
    # parameters: central differences of a scalar loss
    target = torch.rand(
        1,
        3,
        5,
        6,
        dtype=torch.float64,
        device=device,
        generator=torch.Generator(device=device).manual_seed(0),
    )

    def loss_fn():
        return (crf(ut.detach(), it) * target).sum()

    loss = loss_fn()
    grads = torch.autograd.grad(
        loss, [crf.log_w_appearance, crf.log_w_smoothness, crf.compatibility]
    )
    for p, g in zip([crf.log_w_appearance, crf.log_w_smoothness], grads[:2], strict=True):
        with torch.no_grad():
            p += 1e-5
            up = loss_fn()
            p -= 2e-5
            down = loss_fn()
            p += 1e-5
        torch.testing.assert_close(g, (up - down) / 2e-5, rtol=1e-4, atol=1e-7)
    with torch.no_grad():
        crf.compatibility[0, 2] += 1e-5
        up = loss_fn()
        crf.compatibility[0, 2] -= 2e-5
        down = loss_fn()
        crf.compatibility[0, 2] += 1e-5
    torch.testing.assert_close(grads[2][0, 2], (up - down) / 2e-5, rtol=1e-4, atol=1e-7)


def test_learning_lowers_the_loss(device):
    """A few Adam steps on the CRF parameters lower the cross-entropy of its output."""
    img, truth, u = _scene(seed=2, noise_rate=0.4)
    crf = DenseCRF(3, n_iter=3, theta_alpha=10.0, w_appearance=0.5, w_smoothness=0.5).to(device)
    ut = torch.tensor(u[None], device=device)
    it = torch.tensor(img[None], device=device).permute(0, 3, 1, 2)
    tt = torch.tensor(truth[None], device=device)
    opt = torch.optim.Adam(crf.parameters(), lr=0.1)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = torch.nn.functional.nll_loss(torch.log(crf(ut, it) + 1e-8), tt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_module_exceptions(device):
    crf = DenseCRF(3)
    img = torch.zeros(1, 3, 4, 5)
    with pytest.raises(ValueError, match=r"\(N, L, H, W\)"):
        crf(torch.zeros(3, 4, 5), img)
    with pytest.raises(ValueError, match="built for 3"):
        crf(torch.zeros(1, 2, 4, 5), img)
    with pytest.raises(ValueError, match="image"):
        crf(torch.zeros(1, 3, 4, 5), torch.zeros(1, 3, 4, 6))
    with pytest.raises(ValueError, match="contours"):
        crf(torch.zeros(1, 3, 4, 5), img, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        crf(torch.full((1, 3, 4, 5), float("nan")), img)
    with pytest.raises(ValueError, match="n_labels"):
        DenseCRF(0)
    with pytest.raises(TypeError, match="floating-point"):
        dense_crf(torch.zeros(3, 4, 5, dtype=torch.int64), np.zeros((4, 5, 3)))


def test_edge_weight_learns_with_contours(device):
    """With contours the edge kernel is used, its weight gets a gradient, and the loss drops."""
    img, truth, u = _scene(seed=3, noise_rate=0.45)
    cont = np.zeros(truth.shape)
    cont[:, [4, 9]] = 1.0  # the two colour boundaries of _scene (w = 15)
    crf = DenseCRF(3, n_iter=3, theta_alpha=10.0, w_edge=1.0).to(device)
    ut = torch.tensor(u[None], device=device)
    it = torch.tensor(img[None], device=device).permute(0, 3, 1, 2)
    ct = torch.tensor(cont[None], device=device)
    tt = torch.tensor(truth[None], device=device)
    opt = torch.optim.Adam([crf.log_w_edge], lr=0.2)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = torch.nn.functional.nll_loss(torch.log(crf(ut, it, ct) + 1e-8), tt)
        loss.backward()
        assert crf.log_w_edge.grad is not None and crf.log_w_edge.grad.abs() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
