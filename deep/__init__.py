"""deep: torch heads for the bottom-up engine.

Dense-prediction layers (receptive fields, dilated convolution, upsampling, unpooling, FCN, U-Net,
DeepLabv3+, RoIAlign/RoIPool), a pretrained EfficientNet-Lite0 backbone that loads offline,
hypercolumn region scoring and mask refinement, and an edge-aware dense CRF. ``deep`` may import
``bottomup``; never the reverse. Tensors follow torchvision conventions: features ``(N, C, H, W)``,
masks ``(K, H, W)`` bool, boxes ``(K, 4)`` xyxy.
"""

__all__: list[str] = []
