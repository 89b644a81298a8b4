"""Contour sources: what turns an image into contours, and the policy those contours imply.

A contour source is called on an image and returns ``(pb, oriented)``: the contour strength
``(H, W)`` in [0, 1] and the oriented stack ``(O, H, W)`` (or None). It also carries what the rest
of the chain should do with such contours, so that no stage branches on where contours came from:

==============  ==========================================================================
attribute       meaning
==============  ==========================================================================
``owt``         oriented watershed rule: ``"plain"`` (raster-order ties, higra's),
                ``"steepest"`` (ties run down the steepest flank) or ``"ridge"`` (watershed
                and arc strengths on the NMS ridge, :func:`bottomup.owt.ridge_owt_inputs`)
``ridge``       :class:`Ridge` settings of the ``"ridge"`` rule
``arcs``        default arc scores before the merging: ``"mean"`` (OWT-UCM) or a shipped
                scorer, ``"learned"`` or ``"gpb"`` (:data:`ARC_RULES`)
``normalize``   apply the release's sigmoid to the mean-strength UCM (gPb's levels)
``multiscale``  :class:`Multiscale` scales and weights of ``segment`` (None: one scale)
``max_pixels``  the source works on a downscaled copy above this size (None: no limit)
``ranker``      family of the shipped MCG/SCG forests for its hierarchies
==============  ==========================================================================

Built in: :class:`GPb` (registered as ``"gpb"``). Other packages register sources by name
through the entry-point group ``bottomup.contours`` (``deep`` registers ``"learned"``);
:func:`get_source` resolves a name, a source or a plain callable.

A plain callable ``fn(image) -> (pb, oriented)`` becomes ``ContourSource(fn)``, whose defaults
are the documented OWT-UCM [1]_: plain watershed, mean arc strengths, no sigmoid, one scale, so
``bottomup.segment(image, contours=fn)`` equals ``bottomup.ucm(*fn(image))``. A detector that
wants another rule declares it::

    from bottomup.contours import ContourSource, Ridge
    source = ContourSource(my_detector, owt="ridge", ridge=Ridge(smooth=1.0, isotropic=True))
    hierarchy = bottomup.segment(image, contours=source)

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5), 2011. :DOI:`10.1109/TPAMI.2010.161`
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ContourSource", "GPb", "Multiscale", "Ridge", "CNN_RIDGE", "get_source", "source_names",
           "OWT_RULES", "ARC_RULES", "ENTRY_POINT_GROUP"]

#: Values of :attr:`ContourSource.owt`.
OWT_RULES = ("plain", "steepest", "ridge")
#: Named arc rules (:attr:`ContourSource.arcs`; ``bottomup.segment(arcs=...)`` also takes a scorer):
#: ``"mean"`` strength, or a shipped learned scorer named by the contours it was fitted on
#: (:data:`bottomup.owt.arc_scores.SHIPPED_ARC_SCORERS`).
ARC_RULES = ("mean", "learned", "gpb")
#: Entry-point group through which packages register named contour sources.
ENTRY_POINT_GROUP = "bottomup.contours"


@dataclass(frozen=True)
class Ridge:
    """Settings of the ``"ridge"`` oriented watershed (:func:`bottomup.owt.ridge_owt_inputs`).

    Attributes
    ----------
    floor : float
        Share of the contour map kept off the ridge in the watershed input.
    smooth : float
        Gaussian sigma (pixels) applied before the NMS and the watershed (0: none).
    isotropic : bool
        Arc strengths from ``pb`` on the ridge in every orientation instead of the oriented stack.
    power : float
        Exponent applied to the arc strengths.
    """

    floor: float = 0.3
    smooth: float = 0.0
    isotropic: bool = False
    power: float = 1.0

    def __post_init__(self):
        if self.smooth < 0 or self.floor < 0 or self.power <= 0:
            raise ValueError(f"Ridge needs smooth >= 0, floor >= 0 and power > 0, got {self}")


#: Ridge settings for thick CNN edge maps: the watershed on the map smoothed by 1 px, arcs scored by
#: the squared map on its ridge in every orientation (the learned contours of ``deep`` use them).
CNN_RIDGE = Ridge(smooth=1.0, isotropic=True, power=2.0)


@dataclass(frozen=True)
class Multiscale:
    """Image scales whose hierarchies ``segment`` aligns and combines, with their weights.

    The largest scale gives the leaves (:func:`bottomup.hierarchy.multiscale.combine_hierarchies`).
    """

    scales: tuple[float, ...] = (1.0, 0.5)
    weights: tuple[float, ...] = (0.75, 0.25)

    def __post_init__(self):
        s, w = tuple(float(v) for v in self.scales), tuple(float(v) for v in self.weights)
        if not s or len(s) != len(w) or min(s) <= 0 or min(w) <= 0:
            raise ValueError(
                f"Multiscale needs as many positive weights as positive scales, got {self.scales!r}, "
                f"{self.weights!r}")
        object.__setattr__(self, "scales", s)
        object.__setattr__(self, "weights", w)


@dataclass(frozen=True)
class ContourSource:
    """A contour detector and the policy its contours imply (see the module docstring).

    Parameters
    ----------
    fn : callable
        ``fn(image) -> (pb, oriented)`` on a ``(H, W, 3)`` float64 image in [0, 1]; ``oriented``
        may be None. Subclasses override :meth:`contours` instead.
    owt : {"plain", "steepest", "ridge"}
    ridge : Ridge, optional
        Settings of ``owt="ridge"`` (default ``Ridge()``).
    arcs : {"mean", "learned", "gpb"}
        :data:`ARC_RULES`.
    normalize : bool
    multiscale : Multiscale, optional
    max_pixels : int, optional
    ranker : str
        Shipped forest family for its hierarchies (``bottomup.mcg.ranking.ranker_path``).
    name : str
        Shown in manifests and messages.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> import bottomup
    >>> def gradient(image):
    ...     g = ndi.gaussian_gradient_magnitude(image.mean(axis=2), 1.0)
    ...     return g / max(g.max(), 1e-12), None
    >>> img = np.zeros((30, 30, 3)); img[:, 15:] = 1.0
    >>> h = bottomup.segment(img, contours=gradient)
    >>> bool(np.array_equal(h.to_ucm2(), bottomup.ucm(*gradient(img)).to_ucm2()))
    True
    """

    fn: Callable | None = None
    owt: str = "plain"
    ridge: Ridge | None = None
    arcs: str = "mean"
    normalize: bool = False
    multiscale: Multiscale | None = None
    max_pixels: int | None = None
    ranker: str = "learned"
    name: str = "custom"

    def __post_init__(self):
        if self.owt not in OWT_RULES:
            raise ValueError(f"`owt` must be one of {OWT_RULES}, got {self.owt!r}")
        if self.arcs not in ARC_RULES:
            raise ValueError(f"`arcs` must be one of {ARC_RULES}, got {self.arcs!r}")
        if self.ridge is not None and not isinstance(self.ridge, Ridge):
            raise TypeError(f"`ridge` must be a Ridge, got {type(self.ridge).__name__}")
        if self.multiscale is not None and not isinstance(self.multiscale, Multiscale):
            raise TypeError(f"`multiscale` must be a Multiscale or None, got {self.multiscale!r}")
        if type(self).contours is ContourSource.contours and not callable(self.fn):
            raise TypeError(f"`fn` must be a callable image -> (pb, oriented), got {self.fn!r}")

    def contours(self, image) -> tuple[np.ndarray, np.ndarray | None]:
        """``(pb (H, W), oriented (O, H, W) or None)`` of a validated ``(H, W, 3)`` float64 image."""
        pb, oriented = self.fn(image)
        return _as_contours(pb, oriented, image.shape[:2], self.name)

    def __call__(self, image):
        return self.contours(image)

    def model_files(self) -> tuple:
        """Shipped files the contours are computed from (weights), for cache keys and provenance."""
        return ()

    def spec(self) -> dict:
        """The source as plain JSON-able data: its class, policy and options (``fn`` by name).

        Two sources with the same spec make the same contours and hierarchies (given the same
        :meth:`model_files`); cache keys and manifests record it.
        """
        out = {"class": f"{type(self).__module__}.{type(self).__qualname__}"}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "fn":
                v = None if v is None else f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', v)}"
            elif dataclasses.is_dataclass(v):
                v = dataclasses.asdict(v)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def single_scale(self) -> ContourSource:
        """This source without its :class:`Multiscale` (what ``segment`` runs at each scale)."""
        return self if self.multiscale is None else self.with_policy(multiscale=None)

    def at_level(self) -> ContourSource:
        """The source run at each level of MCG's image pyramid (default: :meth:`single_scale`)."""
        return self.single_scale()

    def configured(self, **options) -> ContourSource:
        """This source with some options changed (``bottomup segment``'s flags use it).

        A plain source takes its policy attributes (``multiscale`` may be a bool); :class:`GPb`
        takes ``preset``, ``seed``, ``owt`` and ``multiscale``; other sources their own.
        """
        if isinstance(options.get("multiscale"), (bool, np.bool_)):
            options["multiscale"] = Multiscale() if options["multiscale"] else None
        return self.with_policy(**options) if options else self

    def with_policy(self, **changes) -> ContourSource:
        """A plain :class:`ContourSource` with these contours and the policy changed as given.

        Examples
        --------
        >>> GPb("fast").with_policy(owt="plain").owt
        'plain'
        """
        policy = {f.name: getattr(self, f.name) for f in dataclasses.fields(ContourSource)}
        policy["fn"] = self.fn if type(self) is ContourSource else self.contours
        return ContourSource(**(policy | changes))


def _as_contours(pb, oriented, shape, name):
    pb = np.asarray(pb, dtype=np.float64)
    if pb.shape != tuple(shape):
        raise ValueError(f"contour source {name!r} returned pb of shape {pb.shape}, expected {tuple(shape)}")
    if oriented is not None:
        oriented = np.asarray(oriented, dtype=np.float64)
        if oriented.ndim != 3 or oriented.shape[1:] != pb.shape:
            raise ValueError(f"contour source {name!r} returned an oriented stack of shape {oriented.shape}, "
                             f"expected (O, {pb.shape[0]}, {pb.shape[1]})")
    return pb, oriented


@dataclass(frozen=True)
class GPb(ContourSource):
    """gPb contours [1]_ (``bottomup.contours.gpb``) with the policy of gPb-owt-ucm.

    Parameters
    ----------
    preset : {"quality", "balanced", "fast", "medium"}
        See :data:`bottomup.contours.gpb.PRESETS`.
    seed : int
        Seed of the texton k-means, gPb's only random step.
    owt : {"steepest", "plain", "ridge"}
        ``steepest`` by default: the original OWT with steepest-flank ties.
    multiscale : Multiscale, bool or None
        None (default): two scales (x1 and x0.5, :class:`Multiscale`) for ``quality``, one for
        the other presets; True / False force it.

    The other policy: mean arcs, the release's sigmoid on the levels, images above
    :data:`bottomup.contours.gpb.DEFAULT_MAX_PIXELS` processed downscaled, and the MCG forests
    trained on gPb hierarchies of the same ``owt``.

    Examples
    --------
    >>> GPb().multiscale, GPb("fast").multiscale
    (Multiscale(scales=(1.0, 0.5), weights=(0.75, 0.25)), None)
    >>> GPb("medium", multiscale=False)
    GPb('medium')
    >>> GPb(seed=1, multiscale=False)
    GPb(seed=1, multiscale=False)
    """

    preset: str = "quality"
    seed: int = 0

    def __init__(self, preset: str = "quality", seed: int = 0, owt: str = "steepest",
                 multiscale: Multiscale | bool | None = None):
        from bottomup.contours.gpb import DEFAULT_MAX_PIXELS, check_preset

        preset = check_preset(preset)
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
        if multiscale is None:
            multiscale = preset == "quality"
        if isinstance(multiscale, (bool, np.bool_)):
            multiscale = Multiscale() if multiscale else None
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "seed", int(seed))
        super().__init__(None, owt=owt, ridge=Ridge() if owt == "ridge" else None, arcs="mean",
                         normalize=True, multiscale=multiscale, max_pixels=DEFAULT_MAX_PIXELS,
                         ranker=f"gpb-{owt}", name="gpb")

    def __repr__(self) -> str:  # the constructor call, so messages can suggest runnable spellings
        args = [f"{self.preset!r}"] if self.preset != "quality" else []
        args += [f"seed={self.seed}"] if self.seed else []
        args += [f"owt={self.owt!r}"] if self.owt != "steepest" else []
        plain = self.multiscale in (None, Multiscale())
        if not plain:
            args.append(f"multiscale={self.multiscale!r}")
        elif (self.multiscale is not None) != (self.preset == "quality"):
            args.append(f"multiscale={self.multiscale is not None}")
        return f"GPb({', '.join(args)})"

    def contours(self, image):
        from bottomup.contours.gpb import DEFAULT_MAX_PIXELS, _gpb

        c = _gpb(image, self.preset, self.seed, DEFAULT_MAX_PIXELS)
        return c.pb, c.oriented

    def single_scale(self) -> GPb:
        return GPb(self.preset, self.seed, self.owt, multiscale=False)

    def configured(self, **options) -> GPb:
        now = {"preset": self.preset, "seed": self.seed, "owt": self.owt,
               "multiscale": self.multiscale if self.multiscale is not None else False}
        unknown = set(options) - set(now)
        if unknown:
            raise TypeError(f"GPb options are {sorted(now)}, got {sorted(unknown)}")
        if options.get("preset", self.preset) != self.preset and "multiscale" not in options:
            now["multiscale"] = None  # another preset: its own default
        return GPb(**(now | options))


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def source_names() -> list[str]:
    """Names :func:`get_source` accepts: ``"gpb"`` and those registered through entry points."""
    return sorted({"gpb", *_entry_points()})


def get_source(contours) -> ContourSource:
    """The contour source behind a name, a source object or a plain callable.

    Parameters
    ----------
    contours : str, ContourSource, callable or None
        ``"gpb"`` (or None): :class:`GPb` with its defaults; another name: the source registered
        under it in the entry-point group ``bottomup.contours`` (``"learned"``: the CNN of
        ``deep``, needs torch); a :class:`ContourSource`: itself; a callable
        ``fn(image) -> (pb, oriented)``: ``ContourSource(fn)``, the plain OWT-UCM.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    ImportError
        With the install hint when a registered source's package cannot be imported.
    TypeError
        For anything else.
    """
    if contours is None or (isinstance(contours, str) and contours == "gpb"):
        return GPb()
    if isinstance(contours, ContourSource):
        return contours
    if isinstance(contours, str):
        eps = _entry_points()
        if contours not in eps:
            raise ValueError(f"`contours` must be a ContourSource, a callable or one of {source_names()}, "
                             f"got {contours!r}")
        try:
            made = eps[contours].load()()
        except ImportError as exc:
            raise ImportError(f"contours={contours!r} needs its package ({eps[contours].value}); for "
                              f"'learned': pip install 'bottomup[deep]' ({exc})") from exc
        if not isinstance(made, ContourSource):
            raise TypeError(f"entry point {contours!r} made {type(made).__name__}, not a ContourSource")
        return made
    if callable(contours):
        return ContourSource(contours, name=getattr(contours, "__name__", "custom"))
    raise TypeError(f"`contours` must be a name, a ContourSource or a callable, "
                    f"got {type(contours).__name__}")
