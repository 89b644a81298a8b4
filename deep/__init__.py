"""deep: torch heads for the bottom-up engine.

Dense-prediction layers (receptive fields, dilated convolution, upsampling, unpooling, FCN, U-Net,
DeepLabv3+, RoIAlign/RoIPool), a pretrained EfficientNet-Lite0 backbone that loads offline,
hypercolumn region scoring and mask refinement, and an edge-aware dense CRF. ``deep`` may import
``bottomup``; never the reverse. Tensors follow torchvision conventions: features ``(N, C, H, W)``,
masks ``(K, H, W)`` bool, boxes ``(K, 4)`` xyxy.
"""

from . import backbone, features, models, ops
from ._checks import ShapeError, check_shape
from .backbone import EfficientNetLite0, efficientnet_lite0, preprocess
from .features import Hypercolumns, hypercolumns, pool_hypercolumns, sample_hypercolumns
from .models import ASPP, FCN, DeconvNet, DeepLabV3Plus, UNet, deeplabv3plus_efficientnet_lite0
from .ops import (
    BilinearConvTranspose2d,
    BilinearUpsample,
    ContextModule,
    MaxUnpool,
    RoIAlign,
    RoIPool,
    SeparableConv2d,
    ShiftAndStitch,
    bilinear_conv_transpose2d,
    bilinear_kernel,
    bilinear_upsample,
    context_aggregation,
    identity_init_,
    max_pool_with_indices,
    max_unpool,
    roi_align,
    roi_pool,
    separable_conv2d,
    shift_and_stitch,
    stride_to_dilation,
)
from .receptive_field import LayerRF, receptive_field

__all__ = [
    "backbone",
    "features",
    "models",
    "ops",
    "ShapeError",
    "check_shape",
    "EfficientNetLite0",
    "efficientnet_lite0",
    "preprocess",
    "Hypercolumns",
    "hypercolumns",
    "pool_hypercolumns",
    "sample_hypercolumns",
    "ASPP",
    "FCN",
    "DeconvNet",
    "DeepLabV3Plus",
    "UNet",
    "deeplabv3plus_efficientnet_lite0",
    "BilinearConvTranspose2d",
    "BilinearUpsample",
    "ContextModule",
    "MaxUnpool",
    "RoIAlign",
    "RoIPool",
    "SeparableConv2d",
    "ShiftAndStitch",
    "bilinear_conv_transpose2d",
    "bilinear_kernel",
    "bilinear_upsample",
    "context_aggregation",
    "identity_init_",
    "max_pool_with_indices",
    "max_unpool",
    "roi_align",
    "roi_pool",
    "separable_conv2d",
    "shift_and_stitch",
    "stride_to_dilation",
    "LayerRF",
    "receptive_field",
]
