"""Receptive field, jump and centre of every layer of a convolutional network.

For a layer with kernel ``k``, stride ``s``, padding ``p`` (before the layer) and dilation ``d``,
with ``k_eff = d (k - 1) + 1``, the recursion of Yu & Koltun / Araujo et al. is

    r_out = r_in + (k_eff - 1) * j_in
    j_out = j_in * s
    c_out = c_in + ((k_eff - 1) / 2 - p) * j_in

where ``r`` is the receptive-field size in input pixels, ``j`` (the jump) the distance in input
pixels between adjacent output units, and ``c`` the input coordinate of the centre of the first
output unit (``r_0 = 1, j_0 = 1, c_0 = 0``). It is computed per axis.

References
----------
.. [1] F. Yu and V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.
.. [2] A. Araujo, W. Norris and J. Sim, "Computing Receptive Fields of Convolutional Neural
       Networks", Distill, 2019. :DOI:`10.23915/distill.00021`
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerRF", "receptive_field"]

# Modules that act pixel-wise (or channel-wise) and leave the receptive field unchanged.
_POINTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Identity,
    nn.BatchNorm2d,
    nn.InstanceNorm2d,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.Dropout,
    nn.Dropout2d,
)


@dataclass(frozen=True)
class LayerRF:
    """Receptive-field geometry of one layer's output, per axis ``(rows, cols)``.

    Attributes
    ----------
    name : str
        Qualified module name (``""`` for the input).
    kind : str
        Module class name.
    size : (int, int)
        Receptive-field size in input pixels.
    jump : (int, int)
        Input-pixel distance between adjacent output units (the cumulative stride).
    start : (float, float)
        Input coordinate (row, col) of the centre of the receptive field of output unit ``(0, 0)``;
        unit ``(i, j)`` is centred at ``start + (i, j) * jump``. Negative when padding is used.
    output_shape : tuple of int
        Shape of the layer's output for the traced input.
    """

    name: str
    kind: str
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    output_shape: tuple[int, ...]


def _two(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _geometry(m: nn.Module):
    """Kernel, stride, padding (before), dilation per axis; None for pointwise modules."""
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _two(m.kernel_size), _two(m.stride if m.stride is not None else m.kernel_size)
        d = _two(getattr(m, "dilation", 1))
        p = m.padding
        if p == "same":
            p = tuple((d[i] * (k[i] - 1)) // 2 for i in range(2))
        elif p == "valid":
            p = (0, 0)
        p = getattr(m, "pre_pad", p)  # max-pooling that pads itself (ops.dilation)
        return k, s, _two(p), d
    if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)):
        left, _, top, _ = m.padding
        return (1, 1), (1, 1), (int(top), int(left)), (1, 1)
    if isinstance(m, _POINTWISE):
        return None
    raise TypeError(
        f"receptive_field does not know the geometry of {type(m).__name__}; supported: Conv2d, "
        "MaxPool2d, AvgPool2d, padding modules and pointwise layers"
    )


_POINTWISE_NAMES = {c.__name__ for c in _POINTWISE}


def _step(prev: LayerRF, name: str, m: nn.Module, geom, output_shape) -> LayerRF:
    """Apply one layer's recursion to the record of its input."""
    if geom is None:
        return LayerRF(name, type(m).__name__, prev.size, prev.jump, prev.start, output_shape)
    k, s, p, d = geom
    r, j, c = [], [], []
    for a in range(2):
        keff = d[a] * (k[a] - 1) + 1
        r.append(prev.size[a] + (keff - 1) * prev.jump[a])
        j.append(prev.jump[a] * s[a])
        c.append(prev.start[a] + ((keff - 1) / 2 - p[a]) * prev.jump[a])
    return LayerRF(name, type(m).__name__, (r[0], r[1]), (j[0], j[1]), (c[0], c[1]), output_shape)


def receptive_field(model: nn.Module, input_size) -> list[LayerRF]:
    """Trace a network and give the receptive field of each of its layers.

    Parameters
    ----------
    model : torch.nn.Module
        A chain of ``Conv2d`` / ``MaxPool2d`` / ``AvgPool2d`` / padding layers and pointwise layers
        (activations, normalisation, dropout), as an ``nn.Sequential`` or any module whose leaves
        run in that order. Dilation, padding (including ``padding="same"``) and strides are handled.
    input_size : (C, H, W) or (N, C, H, W) tuple of int
        Shape of the traced input (a zero tensor of the model's dtype and device).

    Returns
    -------
    layers : list of LayerRF
        The input (``name=""``) first, then one entry per leaf module, in execution order.

    Raises
    ------
    TypeError
        If a leaf module has unknown geometry (e.g. a transposed convolution).

    Notes
    -----
    Leaves are found with forward hooks; each layer's input is matched to the output of the layer
    that produced it, so pointwise functional ops in between (``F.relu``) are transparent. When the
    forward calls no leaf module (a Module whose ``forward`` uses the functional form with the
    leaves' weights, as :class:`deep.ops.ContextModule`), the leaves are walked in registration
    order instead, with output sizes from the convolution arithmetic. Branching networks (residual
    sums, concatenations) are outside the recursion's scope: the main path is followed. A leaf with
    a ``padding_before(h, w) -> (top, left)`` method (convolutions that pad in ``forward``, such as
    the TensorFlow "SAME" convolutions of :class:`deep.backbone.EfficientNetLite0`) reports its
    padding for the traced input size.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, dilation=2))
    >>> [(r.size, r.jump) for r in receptive_field(net, (1, 32, 32))]
    [((1, 1), (1, 1)), ((3, 3), (1, 1)), ((4, 4), (2, 2)), ((12, 12), (2, 2))]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, but got {type(model).__name__}")
    size = tuple(int(s) for s in input_size)
    if len(size) == 3:
        size = (1,) + size
    if len(size) != 4 or min(size) < 1:
        raise ValueError(f"`input_size` must be (C, H, W) or (N, C, H, W), but got {input_size!r}")
    try:
        param = next(model.parameters())
        dtype, device = param.dtype, param.device
    except StopIteration:
        dtype, device = torch.float32, torch.device("cpu")

    base = LayerRF("", "input", (1, 1), (1, 1), (0.0, 0.0), size)
    records: list[LayerRF] = [base]
    by_tensor: dict[int, tuple[torch.Tensor, LayerRF]] = {}  # keeps tensors alive
    names = {m: n for n, m in model.named_modules()}
    errors: list[Exception] = []

    def hook(m, inputs, output):
        if errors:
            return
        try:
            geom = _geometry(m)
        except TypeError as err:
            errors.append(err)
            return
        prev = by_tensor.get(id(inputs[0]), (None, records[-1]))[1]
        if geom is not None and hasattr(m, "padding_before"):  # padding decided in forward
            geom = (geom[0], geom[1], tuple(m.padding_before(*inputs[0].shape[-2:])), geom[3])
        rec = _step(prev, names[m], m, geom, tuple(output.shape))
        records.append(rec)
        if isinstance(output, torch.Tensor):
            by_tensor[id(output)] = (output, rec)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        x = torch.zeros(size, dtype=dtype, device=device)
        by_tensor[id(x)] = (x, base)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(x)
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    if errors:
        raise errors[0]
    traced = [r for r in records[1:] if r.kind not in _POINTWISE_NAMES]
    if not traced and any(_geometry(m) is not None for m in leaves):
        # the forward bypassed its leaf modules (functional calls): walk them in registration order
        records = [base]
        for m in leaves:
            geom = _geometry(m)
            prev = records[-1]
            shape = list(prev.output_shape)
            if geom is not None:
                k, st, p, d = geom
                for a in range(2):
                    keff = d[a] * (k[a] - 1) + 1
                    shape[2 + a] = (shape[2 + a] + 2 * p[a] - keff) // st[a] + 1
                if isinstance(m, nn.Conv2d):
                    shape[1] = m.out_channels
            records.append(_step(prev, names[m], m, geom, tuple(shape)))
    return records
