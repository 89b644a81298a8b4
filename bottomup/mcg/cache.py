"""Cache keys and a disk cache for proposal hierarchies (used by the proposal benchmarks).

A cached hierarchy is reused only under the same :func:`hierarchy_key`: the method, the contour
source's :meth:`~bottomup.contours.ContourSource.spec` and arc rule, the image file's content, the
shipped files the hierarchy reads (network weights, arc scorer) and the code that computes it
(:func:`bottomup.io.cache_key`).
"""

from __future__ import annotations

from pathlib import Path

from bottomup.contours.source import ContourSource
from bottomup.hierarchy import Hierarchy
from bottomup.io.cache import cache_key
from bottomup.mcg.propose import PROPOSAL_GPB
from bottomup.owt.arc_scores import ArcScorer
from bottomup.pipeline import model_files

__all__ = ["hierarchy_key", "cached_hierarchy"]


def hierarchy_key(image_path, method: str, source: ContourSource = PROPOSAL_GPB, *, arcs=None,
                  extra: dict | None = None, files=()) -> str:
    """Cache key of ``hierarchy_for(image, method, source, arcs=arcs)``.

    ``extra`` and ``files`` add what a derived result also depends on (a ranker's pools: the
    quotas, the ground truth).
    """
    if isinstance(arcs, ArcScorer):
        raise TypeError("`arcs` must be None or a named rule (bottomup.contours.ARC_RULES) for a cache key, "
                        "not a scorer object")
    arcs = source.arcs if arcs is None else arcs
    params = {"method": method, "source": source.spec(), "arcs": arcs, **(extra or {})}
    code = ["bottomup", *sorted({type(source).__module__.split(".")[0]} - {"bottomup"})]
    return cache_key("hierarchy", params=params, files=[image_path, *model_files(source, arcs), *files],
                     code=code)


def cached_hierarchy(cache_dir, key: str, label: str, compute):
    """``compute()``'s Hierarchy, saved as ``cache_dir/{label}-{key}.npz`` and read back from there.

    Returns ``(hierarchy, hit)``; ``cache_dir=None`` computes every time.
    """
    if cache_dir is None:
        return compute(), False
    path = Path(cache_dir) / f"{label}-{key}.npz"
    if path.exists():
        return Hierarchy.load(path), True
    h = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    h.save(path)
    return h, False
