"""The learned contour detector as a ``bottomup`` contour source, registered as ``"learned"``.

``pyproject.toml`` registers :class:`LearnedContours` in the entry-point group
``bottomup.contours``, so ``bottomup.segment(image, contours="learned")`` finds it while
``bottomup`` itself never imports ``deep`` or torch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from bottomup.contours.source import CNN_RIDGE, ContourSource, Multiscale

__all__ = ["LearnedContours", "learned_contours", "DEFAULT_SCALES", "LEARNED_RIDGE"]

#: Test-time scales of :func:`learned_contours`.
DEFAULT_SCALES = (0.5, 1.0, 1.5, 2.0)
#: Ridge OWT settings of the shipped network (:data:`bottomup.contours.source.CNN_RIDGE`).
LEARNED_RIDGE = CNN_RIDGE


@functools.lru_cache(maxsize=2)
def _net(device: str):
    from deep.contours.net import load_contour_net

    return load_contour_net(device=device)


def learned_contours(image, *, scales=DEFAULT_SCALES, flip: bool = False, device: str = "cpu"):
    """Boundary probability and oriented stack of the shipped contour network.

    Parameters
    ----------
    image : (H, W[, C]) array_like
        Any image the ``bottomup`` image contract accepts.
    scales : sequence of float
        Test-time scales averaged (RCF's multi-scale testing [1]_).
    flip : bool
        Average each scale with its mirror image as well (twice the time).
    device : str
        Torch device.

    Returns
    -------
    pb : (H, W) ndarray of float64 in [0, 1]
    oriented : (8, H, W) ndarray of float64 in [0, 1]
        Boundary strength per orientation (``theta[o] = o * pi / 8``).

    References
    ----------
    .. [1] Y. Liu et al., "Richer Convolutional Features for Edge Detection", CVPR 2017.
    """
    from deep.contours.net import predict_contours

    pb, oriented = predict_contours(_net(device), image, scales=tuple(scales), flip=flip)
    return np.asarray(pb), np.asarray(oriented)


@dataclass(frozen=True)
class LearnedContours(ContourSource):
    """The shipped CNN contours with their policy: ridge OWT, learned arc scores, learned rankers.

    Parameters
    ----------
    scales : sequence of float
        Test-time scales of the network (:func:`learned_contours`).
    multiscale : bool or Multiscale
        Combine the hierarchies of the image at x1 and x0.5 as gPb's quality preset does
        (off by default).
    device : str
        Torch device.

    Examples
    --------
    >>> LearnedContours().at_level().scales
    (1.0,)
    >>> LearnedContours(multiscale=True)
    LearnedContours(multiscale=True)
    """

    scales: tuple[float, ...] = DEFAULT_SCALES
    device: str = "cpu"

    def __init__(self, scales=DEFAULT_SCALES, multiscale: Multiscale | bool = False, device: str = "cpu"):
        if isinstance(multiscale, (bool, np.bool_)):
            multiscale = Multiscale() if multiscale else None
        object.__setattr__(self, "scales", tuple(float(s) for s in scales))
        object.__setattr__(self, "device", str(device))
        super().__init__(None, owt="ridge", ridge=LEARNED_RIDGE, arcs="learned", normalize=False,
                         multiscale=multiscale, max_pixels=None, ranker="learned", name="learned")

    def __repr__(self) -> str:  # the constructor call
        args = [f"scales={self.scales!r}"] if self.scales != DEFAULT_SCALES else []
        if self.multiscale is not None:
            ms = self.multiscale
            args.append("multiscale=True" if ms == Multiscale() else f"multiscale={ms!r}")
        args += [f"device={self.device!r}"] if self.device != "cpu" else []
        return f"LearnedContours({', '.join(args)})"

    def contours(self, image):
        return learned_contours(image, scales=self.scales, device=self.device)

    def model_files(self) -> tuple:
        """The weights this source loads (their hashes go into cache keys and job records)."""
        from deep.contours.net import WEIGHTS_FILE

        return (WEIGHTS_FILE,)

    def single_scale(self) -> LearnedContours:
        return LearnedContours(self.scales, multiscale=False, device=self.device)

    def configured(self, **options) -> LearnedContours:
        now = {"scales": self.scales, "multiscale": self.multiscale if self.multiscale is not None else False,
               "device": self.device}
        unknown = set(options) - set(now)
        if unknown:
            raise TypeError(f"LearnedContours options are {sorted(now)}, got {sorted(unknown)}")
        return LearnedContours(**(now | options))

    def at_level(self) -> LearnedContours:
        """One test scale at each level of MCG's pyramid (the pyramid is the multiscale step)."""
        return LearnedContours((1.0,), multiscale=False, device=self.device)
