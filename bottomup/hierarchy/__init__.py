"""Stage 4: hierarchies of regions (greedy UCM merging, ucm2 <-> Hierarchy, cuts, multiscale)."""

from bottomup.hierarchy.multiscale import combine_hierarchies, image_pyramid, multiscale_hierarchy
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
    "combine_hierarchies",
    "image_pyramid",
    "multiscale_hierarchy",
    "hierarchy_from_pieces",
    "normalize_ucm",
    "ucm",
    "ucm2_to_labels",
    "ucm_from_edge_weights",
]
