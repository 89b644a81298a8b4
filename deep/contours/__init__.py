"""Learned contours: a multi-scale boundary network on EfficientNet-Lite0 (HED/RCF side outputs,
COB-style orientation head), its training on BSDS, and inference that feeds OWT-UCM:
:class:`LearnedContours` is the contour source registered as ``"learned"`` for ``bottomup``.

References
----------
.. [1] S. Xie, Z. Tu, "Holistically-Nested Edge Detection", ICCV 2015.
.. [2] Y. Liu et al., "Richer Convolutional Features for Edge Detection", CVPR 2017.
.. [3] K.-K. Maninis et al., "Convolutional Oriented Boundaries", ECCV 2016 / TPAMI 2018.
"""

from deep.contours.net import ContourNet, load_contour_net, predict_contours
from deep.contours.source import DEFAULT_SCALES, LEARNED_RIDGE, LearnedContours, learned_contours
from deep.contours.train import TrainConfig, balanced_bce, orientation_targets, train

__all__ = [
    "DEFAULT_SCALES",
    "LEARNED_RIDGE",
    "LearnedContours",
    "learned_contours",
    "ContourNet",
    "load_contour_net",
    "predict_contours",
    "TrainConfig",
    "balanced_bce",
    "orientation_targets",
    "train",
]
