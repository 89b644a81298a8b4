"""Stage 5: MCG / SCG object proposals (combinatorial grouping of hierarchy regions, ranked).

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from bottomup.mcg.candidates import Candidates
from bottomup.mcg.features import FEATURE_NAMES, candidate_features, leaf_stats
from bottomup.mcg.grouping import SCG_QUOTAS, combinatorial_grouping, tuples_to_leaf_sets
from bottomup.mcg.propose import (
    MCG_SCALES,
    METHODS,
    PROPOSAL_GPB,
    candidate_pool,
    hierarchy_for,
    proposals,
    rank_pool,
)
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
    "METHODS",
    "PROPOSAL_GPB",
    "SCG_QUOTAS",
    "candidate_features",
    "candidate_pool",
    "combinatorial_grouping",
    "diversify",
    "forest_from_sklearn",
    "hierarchy_for",
    "leaf_stats",
    "predict_forest",
    "proposals",
    "rank_pool",
    "remove_near_duplicates",
    "tuples_to_leaf_sets",
]
