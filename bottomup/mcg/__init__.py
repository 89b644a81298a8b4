"""Stage 5: MCG / SCG object proposals (combinatorial grouping of hierarchy regions, ranked).

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from bottomup.mcg.align import combine_hierarchies
from bottomup.mcg.candidates import Candidates
from bottomup.mcg.features import FEATURE_NAMES, candidate_features, leaf_stats
from bottomup.mcg.grouping import SCG_QUOTAS, combinatorial_grouping, tuples_to_leaf_sets
from bottomup.mcg.pipeline import PRESETS, candidate_pool, proposals, rank_pool
from bottomup.mcg.pyramid import MCG_SCALES, hierarchies_at_scales, image_pyramid
from bottomup.mcg.ranking import (
    Forest,
    diversify,
    forest_from_sklearn,
    predict_forest,
    remove_near_duplicates,
)

__all__ = [
    "Candidates",
    "FEATURE_NAMES",
    "Forest",
    "MCG_SCALES",
    "PRESETS",
    "SCG_QUOTAS",
    "candidate_features",
    "candidate_pool",
    "combinatorial_grouping",
    "combine_hierarchies",
    "diversify",
    "forest_from_sklearn",
    "hierarchies_at_scales",
    "image_pyramid",
    "leaf_stats",
    "predict_forest",
    "proposals",
    "rank_pool",
    "remove_near_duplicates",
    "tuples_to_leaf_sets",
]
