"""Learned contours: network shapes, loss on hand-made cases, orientation targets, a short training
run that lowers the loss, resuming, and the shipped weights."""

import math

import numpy as np
import pytest
import torch

from deep.contours import ContourNet, TrainConfig, balanced_bce, orientation_targets, train
from deep.contours.net import WEIGHTS_FILE, load_contour_net, predict_contours


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    return ContourNet(pretrained=False)


def test_shapes_and_range(small_net, device):
    net = small_net.to(device).eval()
    x = torch.randn(2, 3, 45, 61, device=device)
    with torch.no_grad():
        out = net(x)
    assert out["fused"].shape == (2, 1, 45, 61)
    assert len(out["sides"]) == 5 and all(s.shape == (2, 1, 45, 61) for s in out["sides"])
    assert out["orient"].shape == (2, 8, 45, 61)
    img = np.random.default_rng(0).random((33, 40, 3))
    pb, ori = predict_contours(net, img, scales=(1.0, 0.5), device=device)
    assert pb.shape == (33, 40) and ori.shape == (8, 33, 40)
    assert 0 <= pb.min() and pb.max() <= 1
    np.testing.assert_allclose(ori.max(axis=0), pb, atol=1e-6)  # full strength at the best bin
    net.cpu()


def test_balanced_bce_hand_made():
    logits = torch.zeros(1, 1, 2, 2)
    cons = torch.tensor([[[[1.0, 0.0], [0.0, 0.1]]]])  # one positive, two negatives, one ignored
    valid = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    loss = balanced_bce(logits, cons, valid, eta=0.3, lam=1.0)
    # weights: positive n_neg/tot = 2/3, negatives n_pos/tot = 1/3; bce(0) = log 2
    expected = (2 / 3 + 2 * 1 / 3) * math.log(2) / 3
    assert float(loss) == pytest.approx(expected)
    perfect = torch.tensor([[[[20.0, -20.0], [-20.0, 5.0]]]])
    assert float(balanced_bce(perfect, cons, valid)) < 1e-6
    valid[0, 0, 0, 0] = False
    assert float(balanced_bce(logits, cons, valid, lam=1.0)) == pytest.approx(0.0)  # no positives


def test_orientation_targets_convention():
    c = torch.zeros(3, 1, 41, 41)
    c[0, 0, :, 20] = 1  # vertical edge: theta = 0
    c[1, 0, 20, :] = 1  # horizontal: theta = pi/2 -> bin 4
    idx = torch.arange(41)
    c[2, 0, idx, idx] = 1  # runs down-right along (1, 1): theta = pi/4 -> bin 2
    b = orientation_targets(c)
    assert b[0, 20, 20] == 0 and b[1, 20, 20] == 4 and b[2, 20, 20] == 2


def test_two_iterations_lower_the_loss_and_resume(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    imgs = torch.from_numpy(rng.random((2, 3, 64, 64)).astype(np.float32)) * 0.2
    cons = torch.zeros(2, 1, 64, 64)
    imgs[:, :, :, 32:] += 0.7  # a vertical step edge, marked by the annotators
    cons[:, :, :, 31:33] = 1.0
    net = ContourNet(pretrained=False)
    cfg = TrainConfig(iterations=2, batch_size=2, crop=48, lr=1e-3, lr_backbone=1e-3,
                      checkpoint_every=1, scale_range=(1.0, 1.0))
    valid = torch.ones(2, 1, 64, 64, dtype=torch.bool)
    from deep.contours.train import _normalise

    def loss_now():
        net.eval()
        with torch.no_grad():
            return float(balanced_bce(net(_normalise(imgs))["fused"], cons, valid))

    before = loss_now()
    hist = train(net, imgs, cons, cfg, checkpoint=tmp_path / "ck.pt", log=lambda s: None)
    after = loss_now()
    assert hist["iterations"] == 2 and after < before
    # resuming: asking for 3 iterations runs one more from the checkpoint
    net2 = ContourNet(pretrained=False)
    hist2 = train(net2, imgs, cons, TrainConfig(**{**cfg.__dict__, "iterations": 3}),
                  checkpoint=tmp_path / "ck.pt", log=lambda s: None)
    assert hist2["iterations"] == 3


def test_wall_time_schedule_stops_when_its_minutes_are_spent(tmp_path, monkeypatch):
    import importlib
    import types

    train_mod = importlib.import_module("deep.contours.train")  # the module (the package exports train())

    clock = iter(range(10_000))  # a fake clock: each reading is one second later
    monkeypatch.setattr(train_mod, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    imgs = torch.rand(2, 3, 40, 40)
    cons = torch.zeros(2, 1, 40, 40)
    cons[:, :, :, 19:21] = 1.0
    cfg = TrainConfig(iterations=1000, batch_size=1, crop=32, checkpoint_every=10_000,
                      schedule_minutes=5 / 60, warmup=1)
    hist = train(ContourNet(pretrained=False), imgs, cons, cfg, checkpoint=tmp_path / "ck.pt",
                 log=lambda s: None)
    # readings 1..4 s are inside the 5 s schedule (fractions .2 .. .8), the 5th ends it
    assert hist["iterations"] == 4


def test_shipped_weights_load_and_find_an_edge():
    if not WEIGHTS_FILE.exists():
        pytest.skip("no shipped contour weights in deep/weights/")
    net = load_contour_net()
    img = np.zeros((64, 96, 3))
    img[:, 48:] = 0.9
    pb, ori = predict_contours(net, img, scales=(1.0,))
    col = pb[16:48].mean(axis=0)
    assert abs(int(np.argmax(col)) - 47.5) <= 2  # the step is found
    assert pb[16:48, 47:49].mean() > 5 * pb[16:48, 10:30].mean()
    assert int(np.argmax(ori[:, 32, 47:49].sum(axis=1))) in (0, 7, 1)  # vertical: theta ~ 0


def test_missing_weights_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_contours"):
        load_contour_net(tmp_path / "none.pt")


def test_resample_places_features_where_the_convolutions_put_them():
    from deep.contours.net import _resample

    # a stride-4 map whose feature k holds its input position 4k + 3: resampled to stride 1,
    # pixel i must read i back (inside the range covered by features)
    k = torch.arange(10, dtype=torch.float32)
    f = (4 * k + 3).view(1, 1, 1, 10).expand(1, 1, 3, 10).contiguous()
    out = _resample(f, 4, 1, (12, 40))
    np.testing.assert_allclose(out[0, 0, 5, 3:40].numpy(), np.arange(3, 40), atol=1e-4)
    # and to stride 2: index j sits at 2j + 1
    out2 = _resample(f, 4, 2, (6, 20))
    np.testing.assert_allclose(out2[0, 0, 2, 1:19].numpy(), 2 * np.arange(1, 19) + 1, atol=1e-4)


def test_odd_and_even_sizes_agree_on_the_shared_part(small_net):
    # padding to a multiple of 32 makes the output at a pixel independent of the input's parity
    net = small_net.eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a = net(x)["fused"][..., :40, :60]
        b = net(x[..., :63, :95])["fused"][..., :40, :60]
    torch.testing.assert_close(a, b, atol=0.05, rtol=0)


def test_flip_averaging_is_mirror_equivariant(small_net):
    """With ``flip=True`` a mirrored image gives the mirrored maps, orientation bins mirrored
    (o -> (O - o) mod O); 64x96 needs no padding, so the two views are exact mirrors."""
    net = small_net.eval()
    img = np.random.default_rng(5).random((64, 96, 3))
    pb, ori = predict_contours(net, img, scales=(1.0,), flip=True)
    pb_m, ori_m = predict_contours(net, img[:, ::-1].copy(), scales=(1.0,), flip=True)
    mirror = [(net.n_orient - o) % net.n_orient for o in range(net.n_orient)]
    np.testing.assert_allclose(pb_m, pb[:, ::-1], atol=1e-6)
    np.testing.assert_allclose(ori_m, ori[mirror][:, :, ::-1], atol=1e-6)
    # and it is the mean of the plain and the mirrored single view
    pb1, _ = predict_contours(net, img, scales=(1.0,))
    pb2, _ = predict_contours(net, img[:, ::-1].copy(), scales=(1.0,))
    np.testing.assert_allclose(pb, (pb1 + pb2[:, ::-1]) / 2, atol=1e-6)


class _LocalNet(torch.nn.Module):
    """A stand-in with a 5x5 receptive field: tiles with 32 pixels of context are then exact."""

    n_orient = 8

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 9, 3, padding=1)

    def forward(self, x):
        y = self.b(torch.tanh(self.a(x)))
        return {"fused": y[:, :1], "orient": y[:, 1:]}


def test_tiles_are_pasted_where_they_belong():
    net = _LocalNet().eval()
    img = np.random.default_rng(3).random((150, 230, 3))
    whole = predict_contours(net, img, scales=(1.0, 0.5), tile=4096)
    tiled = predict_contours(net, img, scales=(1.0, 0.5), tile=64, tile_margin=32)
    for a, b in zip(whole, tiled, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # without context the tile borders differ (the stand-in sees zero padding there)
    cut = predict_contours(net, img, scales=(1.0,), tile=64, tile_margin=0)[0]
    assert np.abs(cut - predict_contours(net, img, scales=(1.0,), tile=4096)[0]).max() > 1e-3
    with pytest.raises(ValueError, match="`tile` must be a positive multiple of 32"):
        predict_contours(net, img, tile=100)
    with pytest.raises(ValueError, match="`tile_margin` must be a non-negative multiple of 32"):
        predict_contours(net, img, tile_margin=-32)
    with pytest.raises(ValueError, match="`tile` must be a positive multiple of 32"):
        predict_contours(net, img, tile=0)
    with pytest.raises(TypeError, match="`tile` must be a positive multiple of 32 \\(int\\), got float"):
        predict_contours(net, img, tile=64.0)


def test_tiled_shipped_network_matches_one_pass():
    if not WEIGHTS_FILE.exists():
        pytest.skip("no shipped contour weights in deep/weights/")
    net = load_contour_net()
    rng = np.random.default_rng(0)
    img = np.clip(np.kron(rng.random((12, 18, 3)), np.ones((24, 24, 1)))  # blocks: real edges
                  + 0.05 * rng.random((288, 432, 3)), 0, 1)
    whole, _ = predict_contours(net, img, scales=(1.0,))
    tiled, _ = predict_contours(net, img, scales=(1.0,), tile=128, tile_margin=256)
    assert np.abs(whole - tiled).max() < 0.02 and np.abs(whole - tiled).mean() < 1e-3
