"""Masks to boxes, the link from region candidates to RoI pooling."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_shape, check_tensor

__all__ = ["masks_to_boxes"]


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight ``(K, 4)`` xyxy boxes of ``(K, H, W)`` masks, with torchvision's convention.

    The torch face of :func:`bottomup.masks.masks_to_boxes` (same boxes, same error on an empty
    mask), computed on the masks' device.

    Parameters
    ----------
    masks : (K, H, W) torch.Tensor
        Bool (or any dtype, non-zero = inside).

    Returns
    -------
    boxes : (K, 4) torch.Tensor of float32
        ``[x1, y1, x2, y2]`` = min col, min row, max col, max row of each mask (inclusive pixel
        indices, as ``torchvision.ops.masks_to_boxes``). Add 1 to ``x2, y2`` for the box that
        covers the last pixel when feeding :func:`deep.ops.roi_align` with ``aligned=True``.
        ``K = 0`` gives shape ``(0, 4)``.

    Raises
    ------
    ValueError
        If a mask is empty (it has no box).

    Examples
    --------
    >>> m = torch.zeros(1, 4, 5, dtype=torch.bool); m[0, 1:3, 2:5] = True
    >>> masks_to_boxes(m)
    tensor([[2., 1., 4., 2.]])
    """
    check_tensor(masks, "masks")
    check_shape(masks, ["K", "H", "W"], "masks")
    k, h, w = masks.shape
    if k == 0:
        return torch.zeros((0, 4), dtype=torch.float32, device=masks.device)
    m = masks != 0
    rows = m.any(dim=2)  # (K, H)
    cols = m.any(dim=1)  # (K, W)
    empty = ~rows.any(dim=1)
    if empty.any():
        bad = empty.nonzero().flatten().tolist()
        raise ValueError(f"`masks` {bad[:10]} are empty and have no box; drop them first")
    r = torch.arange(h, device=masks.device)
    c = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, r, h).amin(dim=1)
    y2 = torch.where(rows, r, -1).amax(dim=1)
    x1 = torch.where(cols, c, w).amin(dim=1)
    x2 = torch.where(cols, c, -1).amax(dim=1)
    return torch.stack([x1, y1, x2, y2], dim=1).to(torch.float32)
