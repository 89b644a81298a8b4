"""Interactive segmentation: scribbles completed along a hierarchy (ultrametric distance)."""

from bottomup.interactive.segment import (
    FlatZones,
    default_contours,
    default_hierarchy,
    flat_zones,
    hierarchy_of_image,
    lab_edge_weights,
    segment,
)

__all__ = [
    "FlatZones",
    "default_contours",
    "default_hierarchy",
    "flat_zones",
    "hierarchy_of_image",
    "lab_edge_weights",
    "segment",
]
