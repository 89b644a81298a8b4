"""Slow, obviously-correct references for the ops in :mod:`deep` (plain Python loops).

The RoI references follow torchvision's CPU kernels bin by bin and sample by sample, in the way of
``RoIOpTester.expected_fn`` in pytorch/vision ``test/test_ops.py`` (written anew here).
"""

from __future__ import annotations

import math

import torch


def _bilinear(img, y, x):
    """Value of ``img (H, W)`` at ``(y, x)`` as torchvision's ``bilinear_interpolate``."""
    h, w = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0
    y = max(y, 0.0)
    x = max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_low = y_high = h - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_low = x_high = w - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * float(img[y_low, x_low])
        + hy * lx * float(img[y_low, x_high])
        + ly * hx * float(img[y_high, x_low])
        + ly * lx * float(img[y_high, x_high])
    )


def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """Loop reference for RoIAlign; ``rois`` is ``(K, 5)``; returns float64 ``(K, C, PH, PW)``."""
    ph_n, pw_n = output_size
    k = rois.shape[0]
    c = input.shape[1]
    out = torch.zeros((k, c, ph_n, pw_n), dtype=torch.float64)
    x = input.detach().to(torch.float64).cpu()
    for r in range(k):
        b, x1, y1, x2, y2 = (float(v) for v in rois[r])
        off = 0.5 if aligned else 0.0
        sw, sh = x1 * spatial_scale - off, y1 * spatial_scale - off
        ew, eh = x2 * spatial_scale - off, y2 * spatial_scale - off
        rw, rh = ew - sw, eh - sh
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph_n, rw / pw_n
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / ph_n)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / pw_n)
        count = max(gh * gw, 1)
        for ch in range(c):
            img = x[int(b), ch]
            for ph in range(ph_n):
                for pw in range(pw_n):
                    acc = 0.0
                    for iy in range(gh):
                        yy = sh + ph * bh + (iy + 0.5) * bh / gh
                        for ix in range(gw):
                            xx = sw + pw * bw + (ix + 0.5) * bw / gw
                            acc += _bilinear(img, yy, xx)
                    out[r, ch, ph, pw] = acc / count
    return out


def _c_round(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def roi_pool(input, rois, output_size, spatial_scale=1.0):
    """Loop reference for RoIPool; ``rois`` is ``(K, 5)``; returns float64 ``(K, C, PH, PW)``."""
    ph_n, pw_n = output_size
    k = rois.shape[0]
    _, c, h, w = input.shape
    out = torch.zeros((k, c, ph_n, pw_n), dtype=torch.float64)
    x = input.detach().to(torch.float64).cpu()
    for r in range(k):
        b = int(rois[r, 0])
        xs = _c_round(float(rois[r, 1]) * spatial_scale)
        ys = _c_round(float(rois[r, 2]) * spatial_scale)
        xe = _c_round(float(rois[r, 3]) * spatial_scale)
        ye = _c_round(float(rois[r, 4]) * spatial_scale)
        rw, rh = max(xe - xs + 1, 1), max(ye - ys + 1, 1)
        bh, bw = rh / ph_n, rw / pw_n
        for ph in range(ph_n):
            hs = min(max(math.floor(ph * bh) + ys, 0), h)
            he = min(max(math.ceil((ph + 1) * bh) + ys, 0), h)
            for pw in range(pw_n):
                ws = min(max(math.floor(pw * bw) + xs, 0), w)
                we = min(max(math.ceil((pw + 1) * bw) + xs, 0), w)
                for ch in range(c):
                    if he <= hs or we <= ws:
                        out[r, ch, ph, pw] = 0.0
                        continue
                    best = -math.inf
                    for yy in range(hs, he):
                        for xx in range(ws, we):
                            best = max(best, float(x[b, ch, yy, xx]))
                    out[r, ch, ph, pw] = best
    return out


def receptive_field_empirical(model, input_shape, unit):
    """Receptive field of one output unit found by back-propagation.

    Returns ``(rows, cols)``: the index ranges (first, last) of input pixels with non-zero gradient.
    The model should have positive weights and no max-pooling so that no path cancels or is cut.
    """
    x = torch.ones(input_shape, dtype=torch.float64, requires_grad=True)
    y = model(x)
    y[(0, 0) + tuple(unit)].backward()
    nz = (x.grad[0].abs().sum(0) != 0).nonzero()
    return (int(nz[:, 0].min()), int(nz[:, 0].max())), (int(nz[:, 1].min()), int(nz[:, 1].max()))
