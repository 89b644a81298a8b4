"""Stage 4: hierarchies of regions (greedy UCM merging, ucm2 <-> Hierarchy, cuts)."""

from bottomup.hierarchy.tree import Hierarchy
from bottomup.hierarchy.ucm import (
    UCM_SIGMOID,
    hierarchy_from_pieces,
    normalize_ucm,
    ucm,
    ucm2_to_labels,
    ucm_from_edge_weights,
)

__all__ = [
    "UCM_SIGMOID",
    "Hierarchy",
    "hierarchy_from_pieces",
    "normalize_ucm",
    "ucm",
    "ucm2_to_labels",
    "ucm_from_edge_weights",
]
