"""Interactive segmentation: scribbles completed along a hierarchy (ultrametric distance)."""

from bottomup.interactive.segment import (
    default_contours,
    default_hierarchy,
    hierarchy_of_image,
    lab_edge_weights,
    segment,
)

__all__ = ["default_contours", "default_hierarchy", "hierarchy_of_image", "lab_edge_weights", "segment"]
