"""Receptive fields: recursion against hand values and against back-propagation from one unit."""

from __future__ import annotations

import pytest
from deep_testing import naive
from torch import nn

from deep import receptive_field
from deep.ops import ContextModule, stride_to_dilation


def _positive(net):
    for p in net.parameters():
        nn.init.constant_(p, 0.1)
    return net.double()


def test_hand_computed():
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(1, 1, 3, dilation=2, padding=2),
        nn.Conv2d(1, 1, 1, stride=2),
    )
    rf = receptive_field(net, (1, 40, 40))
    assert [r.size[0] for r in rf] == [1, 3, 3, 4, 12, 12]
    assert [r.jump[0] for r in rf] == [1, 1, 1, 2, 2, 4]
    # centres: conv3 valid -> 1; pool k2 -> 1.5; dilated conv padded by 2 -> 1.5 + (2 - 2) * 2
    assert [r.start[0] for r in rf] == [0.0, 1.0, 1.0, 1.5, 1.5, 1.5]
    assert rf[-1].output_shape == (1, 1, 10, 10)
    assert rf[2].kind == "ReLU" and rf[1].name == "0"


def test_context_module_fields():
    """Yu & Koltun Table 1: receptive fields 3, 5, 9, 17, 33, 65, 67, 67."""
    rf = receptive_field(ContextModule(2), (2, 8, 8))
    sizes = [r.size[0] for r in rf if r.kind == "Conv2d"]
    assert sizes == [3, 5, 9, 17, 33, 65, 67, 67]


NETS = {
    "plain": lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(2, 2, 3, padding=1),
        nn.Conv2d(2, 1, 5, stride=2),
    ),
    "dilated_padded": lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.Conv2d(2, 2, 3, stride=2, padding=1),
        nn.Conv2d(2, 2, 3, dilation=3, padding=3),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Conv2d(2, 1, (3, 5), dilation=(2, 1)),
    ),
    "same_and_pad": lambda: nn.Sequential(
        nn.ZeroPad2d((2, 2, 1, 1)),
        nn.Conv2d(1, 2, 3, padding="same", dilation=2),
        nn.Conv2d(2, 1, 3, stride=3),
    ),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_matches_backprop(name):
    """Size and centre of the last unit's field match the pixels its gradient reaches."""
    net = _positive(NETS[name]())
    shape = (1, 1, 61, 67)
    rf = receptive_field(net, shape)[-1]
    out_h, out_w = rf.output_shape[-2:]
    for unit in [(out_h // 2, out_w // 2), (out_h // 2 + 1, out_w // 2 - 1)]:
        rows, cols = naive.receptive_field_empirical(net, shape, unit)
        for axis, (lo, hi) in enumerate((rows, cols)):
            assert hi - lo + 1 == rf.size[axis], (axis, lo, hi, rf)
            assert (lo + hi) / 2 == rf.start[axis] + unit[axis] * rf.jump[axis]


def test_after_stride_to_dilation():
    """Removing a stride keeps the field size and halves the jump after it."""
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(1, 1, 3, padding=1),
        nn.Conv2d(1, 1, 3, padding=1),
    )
    before = receptive_field(net, (1, 32, 32))
    after = receptive_field(stride_to_dilation(net, "1"), (1, 32, 32))
    assert [r.size for r in before] == [r.size for r in after]
    assert after[-1].jump == (1, 1) and before[-1].jump == (2, 2)


def test_exception():
    with pytest.raises(TypeError, match="ConvTranspose2d"):
        receptive_field(nn.Sequential(nn.ConvTranspose2d(1, 1, 2)), (1, 8, 8))
    with pytest.raises(ValueError, match="input_size"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3)), (8, 8))
    with pytest.raises(TypeError, match="model"):
        receptive_field("net", (1, 8, 8))


def test_cuda_model(device):
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)).to(device)
    assert receptive_field(net, (1, 16, 16))[-1].size == (4, 4)


def test_module_left_unchanged():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Dropout())
    net.train()
    receptive_field(net, (1, 8, 8))
    assert net.training and not net[0]._forward_hooks


def test_efficientnet_taps():
    """The backbone's taps: jumps equal their strides, and the stride-32 field is wider than the
    image."""
    from deep.backbone import efficientnet_lite0

    class Taps(nn.Module):  # the classifier (Linear) has no spatial geometry: trace the taps
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.forward_features(x)

    rf = {
        r.name[4:]: r
        for r in receptive_field(Taps(efficientnet_lite0(pretrained=False)), (3, 64, 64))
    }
    assert rf["_blocks.0._project_conv"].jump == (2, 2)
    assert rf["_blocks.2._project_conv"].jump == (4, 4)
    assert rf["_blocks.15._project_conv"].jump == (32, 32)
    assert rf["_conv_stem"].size == (3, 3) and rf["_conv_stem"].start == (1.0, 1.0)
    assert rf["_blocks.15._project_conv"].size[0] > 64
    # TF "SAME" on the stem (3x3, stride 2, even input) pads 0 before and 1 after, so unit 0 is
    # centred on input pixel 1, not 0 as with symmetric padding 1
    net8 = Taps(efficientnet_lite0(pretrained=False, output_stride=8))
    rf8 = {r.name[4:]: r for r in receptive_field(net8, (3, 64, 64))}
    assert rf8["_blocks.15._project_conv"].jump == (8, 8)
