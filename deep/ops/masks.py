"""Masks to boxes, the link from region candidates to RoI pooling."""

from __future__ import annotations

import torch
from torch import Tensor

from bottomup.masks import masks_to_boxes as _masks_to_boxes

from .._checks import check_shape, check_tensor

__all__ = ["masks_to_boxes"]


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight ``(K, 4)`` xyxy boxes of ``(K, H, W)`` masks, with torchvision's convention.

    The torch face of :func:`bottomup.masks.masks_to_boxes`, which computes the boxes (same
    boxes, same error on an empty mask); they come back on the masks' device.

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
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.float32, device=masks.device)
    boxes = _masks_to_boxes((masks != 0).cpu().numpy())
    return torch.as_tensor(boxes, dtype=torch.float32, device=masks.device)
