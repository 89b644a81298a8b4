"""Evaluation: BSDS boundaries (ODS/OIS/AP), regions (Covering/PRI/VI), proposals, semantic, instance.

Every metric is split into a per-image update that returns sufficient statistics and a dataset
compute step, so dataset figures aggregate counts rather than averaging per-image scores.
"""

from bottomup.metrics.boundary import (
    BoundaryParams,
    boundary_counts,
    bsds_thresholds,
    collect_boundaries,
    match_boundaries,
    thin,
)
from bottomup.metrics.instance import InstanceAP, InstanceAPResult, InstanceParams, mask_iou
from bottomup.metrics.proposals import (
    ProposalParams,
    ProposalRecall,
    ProposalScores,
    best_overlaps_boxes,
    best_overlaps_leaves,
    best_overlaps_masks,
    overlaps_leaves,
    proposal_scores,
)
from bottomup.metrics.regions import (
    RegionCounts,
    collect_regions,
    covering,
    rand_index,
    region_counts,
    segmentation_counts,
    variation_of_information,
)
from bottomup.metrics.semantic import (
    SemanticParams,
    SemanticScores,
    SemanticSegmentationMetric,
    confusion_matrix,
    semantic_scores,
)

__all__ = [
    "BoundaryParams", "boundary_counts", "bsds_thresholds", "collect_boundaries",
    "match_boundaries", "thin",
    "RegionCounts", "collect_regions", "covering", "rand_index", "region_counts",
    "segmentation_counts", "variation_of_information",
    "InstanceAP", "InstanceAPResult", "InstanceParams", "mask_iou",
    "ProposalParams", "ProposalRecall", "ProposalScores", "best_overlaps_boxes",
    "best_overlaps_leaves", "best_overlaps_masks", "overlaps_leaves", "proposal_scores",
    "SemanticParams", "SemanticScores", "SemanticSegmentationMetric", "confusion_matrix",
    "semantic_scores",
]
