"""Pretrained backbones that load offline."""

from .efficientnet import (
    FEATURE_STRIDES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    EfficientNetLite0,
    efficientnet_lite0,
    preprocess,
    weights_path,
)

__all__ = [
    "FEATURE_STRIDES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EfficientNetLite0",
    "efficientnet_lite0",
    "preprocess",
    "weights_path",
]
