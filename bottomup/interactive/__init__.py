"""Interactive segmentation: scribbles completed along a hierarchy (ultrametric distance)."""

from bottomup.interactive.segment import hierarchy_of_image, lab_edge_weights, segment

__all__ = ["hierarchy_of_image", "lab_edge_weights", "segment"]
