"""Dense-prediction architectures (FCN-32s/16s/8s, U-Net, DeconvNet/SegNet, DeepLabv3+) and
Mask R-CNN (FPN, RPN or bottom-up RoIs)."""

from .deconvnet import DeconvNet
from .deeplab import ASPP, DeepLabV3Plus, deeplabv3plus_efficientnet_lite0
from .fcn import FCN, FCN_VARIANTS
from .maskrcnn import MaskRCNN
from .unet import UNet

__all__ = [
    "ASPP",
    "DeconvNet",
    "DeepLabV3Plus",
    "FCN",
    "FCN_VARIANTS",
    "MaskRCNN",
    "UNet",
    "deeplabv3plus_efficientnet_lite0",
]
