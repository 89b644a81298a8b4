"""Dense-prediction ops: each a functional form plus an ``nn.Module`` whose ``forward`` calls it."""

from .dilation import (
    CONTEXT_DILATIONS,
    ContextModule,
    SeparableConv2d,
    context_aggregation,
    identity_init_,
    separable_conv2d,
    stride_to_dilation,
)
from .masks import masks_to_boxes
from .roi import RoIAlign, RoIPool, boxes_to_rois, roi_align, roi_pool
from .upsample import (
    BilinearConvTranspose2d,
    BilinearUpsample,
    MaxUnpool,
    ShiftAndStitch,
    bilinear_conv_transpose2d,
    bilinear_kernel,
    bilinear_upsample,
    max_pool_with_indices,
    max_unpool,
    shift_and_stitch,
)

__all__ = [
    "CONTEXT_DILATIONS",
    "ContextModule",
    "SeparableConv2d",
    "context_aggregation",
    "identity_init_",
    "separable_conv2d",
    "stride_to_dilation",
    "masks_to_boxes",
    "RoIAlign",
    "RoIPool",
    "boxes_to_rois",
    "roi_align",
    "roi_pool",
    "BilinearConvTranspose2d",
    "BilinearUpsample",
    "MaxUnpool",
    "ShiftAndStitch",
    "bilinear_conv_transpose2d",
    "bilinear_kernel",
    "bilinear_upsample",
    "max_pool_with_indices",
    "max_unpool",
    "shift_and_stitch",
]
