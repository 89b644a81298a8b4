"""The contour network and its inference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deep.backbone.efficientnet import IMAGENET_MEAN, IMAGENET_STD, efficientnet_lite0

__all__ = ["ContourNet", "load_contour_net", "predict_contours", "WEIGHTS_FILE"]

#: Trained weights shipped in the package (see ``deep/weights/MODEL_CARD_contours.md``).
WEIGHTS_FILE = Path(__file__).resolve().parents[1] / "weights" / "contours_lite0.pt"

_SIDE = 21  # channels of each side branch (RCF uses 21)


class ContourNet(nn.Module):
    """Multi-scale boundary network with oriented outputs.

    Side branches read the backbone taps at strides 2, 4, 8, 16 and 32 (3x3 conv to 21 channels,
    ReLU, 1x1 conv to one logit), are upsampled bilinearly to the input size and fused by a 1x1
    convolution (HED/RCF). An orientation head classifies the boundary orientation into
    ``n_orient`` bins of ``pi / n_orient`` (``theta[o] = o * pi / n_orient``, the convention of
    ``bottomup``: the edge runs along ``(cos theta, sin theta)`` in (row, col)) from the side
    features concatenated at stride 2 (COB's oriented boundaries, as a classifier).

    Parameters
    ----------
    backbone : nn.Module, optional
        Anything with ``forward_features(x) -> {stride: (N, C_s, ...)}`` and
        ``feature_channels``; EfficientNet-Lite0 by default.
    pretrained : bool
        ImageNet weights for the default backbone (loaded offline).
    n_orient : int
        Orientation bins.

    Shape:
        - Input: ``(N, 3, H, W)`` normalised as the backbone expects.
        - Output: dict with ``fused (N, 1, H, W)``, ``sides`` (list of 5 ``(N, 1, H, W)``) and
          ``orient (N, n_orient, H, W)`` logits.
    """

    def __init__(self, backbone: nn.Module | None = None, *, pretrained: bool = True, n_orient: int = 8):
        super().__init__()
        if backbone is None:
            backbone = efficientnet_lite0(pretrained=pretrained)
            # the classifier is not used: drop it so the shipped weights stay small
            for name in ("_conv_head", "_bn1", "_fc", "_dropout"):
                if hasattr(backbone, name):
                    setattr(backbone, name, nn.Identity())
        self.backbone = backbone
        self.strides = tuple(sorted(backbone.feature_channels))
        self.reduce = nn.ModuleList(
            nn.Sequential(nn.Conv2d(backbone.feature_channels[s], _SIDE, 3, padding=1), nn.ReLU(inplace=True))
            for s in self.strides
        )
        self.score = nn.ModuleList(nn.Conv2d(_SIDE, 1, 1) for _ in self.strides)
        self.fuse = nn.Conv2d(len(self.strides), 1, 1)
        nn.init.constant_(self.fuse.weight, 1.0 / len(self.strides))
        nn.init.zeros_(self.fuse.bias)
        self.orient = nn.Sequential(
            nn.Conv2d(_SIDE * len(self.strides), 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, n_orient, 1),
        )
        self.n_orient = n_orient

    def forward(self, x: torch.Tensor) -> dict:
        h, w = x.shape[-2:]
        # Pad to a multiple of the coarsest stride so that every stride-2 "same" convolution sees
        # an even size: feature k at stride s then sits at input pixel s*k + s - 1, at train
        # (crops) and test (whole images) time alike, and the side outputs are resampled exactly
        # there (plain bilinear upsampling would misplace them by (s - 1) / 2 pixels).
        m = max(self.strides)
        hp, wp = -(-h // m) * m, -(-w // m) * m
        if (hp, wp) != (h, w):
            mode = "reflect" if min(h, w) > max(hp - h, wp - w) else "replicate"
            x = F.pad(x, (0, wp - w, 0, hp - h), mode=mode)
        taps = self.backbone.forward_features(x)
        feats = [red(taps[s]) for red, s in zip(self.reduce, self.strides, strict=True)]
        sides = [_resample(sc(f), s, 1, (hp, wp))[..., :h, :w]
                 for sc, f, s in zip(self.score, feats, self.strides, strict=True)]
        fused = self.fuse(torch.cat(sides, dim=1))
        t = self.strides[0]
        size_t = feats[0].shape[-2:]
        cat = torch.cat([_resample(f, s, t, size_t) for f, s in zip(feats, self.strides, strict=True)], 1)
        orient = _resample(self.orient(cat), t, 1, (hp, wp))[..., :h, :w]
        return {"fused": fused, "sides": sides, "orient": orient}


def _resample(f: torch.Tensor, s: int, t: int, size) -> torch.Tensor:
    """Resample a stride-``s`` map onto the stride-``t`` grid (``t <= s``), bilinearly.

    Feature ``k`` of a stride-``s`` map made by TF-"same" stride-2 convolutions on even sizes sits
    at input pixel ``s*k + s - 1``; target index ``j`` of stride ``t`` sits at ``t*j + t - 1``.
    """
    if s == t and tuple(f.shape[-2:]) == tuple(size):
        return f
    n, _, hs, ws = f.shape
    ht, wt = size
    dev, dt = f.device, f.dtype
    u = (t * torch.arange(ht, device=dev, dtype=torch.float32) + t - s) / s
    v = (t * torch.arange(wt, device=dev, dtype=torch.float32) + t - s) / s
    gy = 2 * u / max(hs - 1, 1) - 1
    gx = 2 * v / max(ws - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)
    grid = grid.to(dt).unsqueeze(0).expand(n, ht, wt, 2)
    return F.grid_sample(f, grid, mode="bilinear", padding_mode="border", align_corners=True)


def load_contour_net(path: str | os.PathLike | None = None, *, device="cpu") -> ContourNet:
    """Load a trained :class:`ContourNet` (the shipped weights by default), in eval mode.

    Parameters
    ----------
    path : path-like, optional
        A ``.pt`` file written by :func:`deep.contours.train.train` (``{"model": state_dict}``) or
        a bare state dict. Defaults to :data:`WEIGHTS_FILE`.
    device : str or torch.device

    Raises
    ------
    FileNotFoundError
        If the weights file does not exist (train with ``bench/train_contours.py``).
    """
    path = Path(path) if path is not None else WEIGHTS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"contour weights not found: {path}; train them with `python bench/train_contours.py`"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    net = ContourNet(pretrained=False)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.to(device).eval()


def _normalise(image: np.ndarray, device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).to(device)


#: Side of the square a single forward pass covers in :func:`predict_contours`; larger inputs
#: run in tiles (bounded memory: a forward pass takes ~0.5 GB per million input pixels on the CPU).
TILE = 2048
#: Context kept around each tile (a multiple of the network's coarsest stride, 32), enough to
#: keep ``pb`` close to one whole pass (figures: docs/results.md#large-images).
TILE_MARGIN = 256


def _logits(net: ContourNet, x: torch.Tensor, tile: int, margin: int):
    """Fused and orientation logits of ``x`` (1, 3, H, W), in tiles when it is large.

    Tiles of ``tile`` x ``tile`` pixels are run with ``margin`` pixels of context on each side,
    their origins on multiples of 32 so that every tile's feature grid is the whole image's
    (features at input pixel ``s k + s - 1`` for stride ``s``, see :class:`ContourNet`); only the
    tile's own pixels are kept. Away from the margin's reach the result equals one pass over
    the whole image up to the context the margin cuts off.
    """
    h, w = x.shape[-2:]
    if h <= tile + margin and w <= tile + margin:
        out = net(x)
        return out["fused"], out["orient"]
    fused = x.new_empty(1, 1, h, w)
    orient = x.new_empty(1, net.n_orient, h, w)
    for r0 in range(0, h, tile):
        for c0 in range(0, w, tile):
            r1, c1 = min(r0 + tile, h), min(c0 + tile, w)
            a0, b0 = max(0, r0 - margin), max(0, c0 - margin)
            a1, b1 = min(h, r1 + margin), min(w, c1 + margin)
            out = net(x[..., a0:a1, b0:b1])
            fused[..., r0:r1, c0:c1] = out["fused"][..., r0 - a0:r1 - a0, c0 - b0:c1 - b0]
            orient[..., r0:r1, c0:c1] = out["orient"][..., r0 - a0:r1 - a0, c0 - b0:c1 - b0]
    return fused, orient


@torch.no_grad()
def predict_contours(net: ContourNet, image, *, scales=(0.5, 1.0, 1.5), flip: bool = False,
                     device=None, tile: int = TILE, tile_margin: int = TILE_MARGIN):
    """Boundary probability and oriented stack of one image, averaged over scales.

    Parameters
    ----------
    net : ContourNet
        In eval mode.
    image : (H, W, 3) array_like
        RGB, any dtype the ``bottomup`` image contract accepts.
    scales : sequence of float
        Test-time scales (RCF's multi-scale testing); each output is resized back.
    flip : bool
        Also run each scale on the horizontally mirrored image and average (orientation bins
        mirrored back: ``o -> (O - o) mod O``).
    device : torch.device, optional
        Defaults to the network's device.
    tile, tile_margin : int
        A scaled image larger than ``tile + tile_margin`` on a side runs in ``tile``-pixel
        tiles with ``tile_margin`` pixels of context (both multiples of 32), so memory stays
        bounded on large images (~3.5 GB per pass at the defaults; untiled, the x2 scale of a
        10 MP image would need ~20 GB). Images up to 1152 pixels a side run in one pass at
        every default scale, so BSDS-sized results do not depend on it.

    Returns
    -------
    pb : (H, W) ndarray of float64 in [0, 1]
        Fused boundary probability.
    oriented : (O, H, W) ndarray of float64 in [0, 1]
        ``pb * p(o) / max_o p(o)``: the boundary strength read at orientation ``o``
        (``theta[o] = o * pi / O``), full strength at the predicted orientation.
    """
    from bottomup.validate import check_image

    img = check_image(image)
    h, w = img.shape[:2]
    for name, v, least in (("tile", tile, 32), ("tile_margin", tile_margin, 0)):
        kind = "positive" if least else "non-negative"
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"`{name}` must be a {kind} multiple of 32 (int), got {type(v).__name__}")
        if v < least or v % 32:
            raise ValueError(f"`{name}` must be a {kind} multiple of 32, got {v!r}")
    device = device or next(net.parameters()).device
    x = _normalise(img, device)
    pb = torch.zeros(1, 1, h, w, device=device)
    po = torch.zeros(1, net.n_orient, h, w, device=device)
    views = [False, True] if flip else [False]
    mirror = [(net.n_orient - o) % net.n_orient for o in range(net.n_orient)]
    for s in scales:
        hs, ws = max(8, round(h * s)), max(8, round(w * s))
        xs = x if (hs, ws) == (h, w) else F.interpolate(x, size=(hs, ws), mode="bilinear",
                                                        align_corners=False, antialias=s < 1)
        for flipped in views:
            fl, ol = _logits(net, xs.flip(-1) if flipped else xs, tile, tile_margin)
            f = torch.sigmoid(fl.float())
            o = torch.softmax(ol.float(), dim=1)
            if flipped:
                f, o = f.flip(-1), o.flip(-1)[:, mirror]
            if (hs, ws) != (h, w):
                f = F.interpolate(f, size=(h, w), mode="bilinear", align_corners=False)
                o = F.interpolate(o, size=(h, w), mode="bilinear", align_corners=False)
            pb += f / (len(scales) * len(views))
            po += o / (len(scales) * len(views))
    rel = po / po.amax(dim=1, keepdim=True).clamp_min(1e-12)
    oriented = (pb * rel)[0].cpu().double().numpy()
    pb_np = pb[0, 0].cpu().double().numpy()
    return np.clip(pb_np, 0, 1), np.clip(oriented, 0, 1)
