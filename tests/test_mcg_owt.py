"""The hierarchies and rankers of the proposals: method x contour source (``bottomup.mcg``)."""

import os

import numpy as np
import pytest

from bottomup.contours import GPb
from bottomup.mcg import PROPOSAL_GPB, proposals
from bottomup.mcg.propose import hierarchy_for, legacy_preset
from bottomup.mcg.ranking import RANKER_FILES, load_ranker, ranker_path


def _img():
    rng = np.random.default_rng(1)
    img = 0.3 + 0.1 * rng.random((40, 48, 3))
    img[8:28, 10:30] = [0.9, 0.1, 0.1]
    img[20:36, 30:44] = [0.1, 0.2, 0.9]
    return img


@pytest.mark.parametrize("owt", ["plain", "steepest"])
def test_scg_groups_the_single_scale_hierarchy_of_the_source(owt):
    from bottomup.pipeline import segment

    img = _img()
    source = GPb("medium", owt=owt)
    np.testing.assert_array_equal(hierarchy_for(img, "scg", source).to_ucm2(),
                                  segment(img, source).to_ucm2())
    # a two-scale source is grouped at one scale by SCG
    np.testing.assert_array_equal(hierarchy_for(img, "scg", GPb("fast", multiscale=True)).to_ucm2(),
                                  segment(img, GPb("fast")).to_ucm2())


def test_default_source_and_rankers_shipped():
    assert PROPOSAL_GPB == GPb("medium", owt="steepest", multiscale=False)
    for path in {ranker_path(*key) for key in RANKER_FILES}:
        assert os.path.exists(path)
    img = _img()
    a = proposals(img, n=20)
    b = proposals(img, n=20, contours=PROPOSAL_GPB,
                  ranker=load_ranker(ranker_path("scg", PROPOSAL_GPB.ranker)))
    np.testing.assert_array_equal(a.leaf_sets, b.leaf_sets)


def test_no_ranker_for_a_family_is_a_clear_error():
    with pytest.raises(ValueError, match="no shipped ranker"):
        proposals(_img(), n=5, contours=GPb("fast", owt="ridge"))
    with pytest.raises(ValueError, match="no shipped ranker"):
        ranker_path("selective", "gpb-steepest")
    with pytest.raises(ValueError, match="`method` must be one of"):
        proposals(_img(), n=5, method="selective")


def test_rankers_per_method_and_family():
    assert os.path.basename(ranker_path("mcg", "gpb-steepest")) == "mcg_ranker_steepest.npz"
    assert ranker_path("mcg", "gpb-plain") == ranker_path("scg", "gpb-plain")
    assert os.path.basename(ranker_path("scg", "learned")) == "scg_ranker_learned.npz"
    assert os.path.basename(ranker_path("mcg", "learned")) == "mcg_ranker_learned.npz"


def test_mcg_method_has_its_own_ranker():
    """The multiscale hierarchy is scored by its own forest: same as passing it explicitly."""
    from bottomup.mcg.propose import candidate_pool, rank_pool

    img = _img()
    h = hierarchy_for(img, "mcg")
    a = proposals(img, n=30, method="mcg", hierarchy=h)
    b = proposals(img, n=30, method="mcg", hierarchy=h,
                  ranker=load_ranker(ranker_path("mcg", "gpb-steepest")))
    np.testing.assert_array_equal(a.leaf_sets, b.leaf_sets)
    np.testing.assert_allclose(a.scores, b.scores)
    pool = candidate_pool(h)
    assert pool.features.shape[0] > 0 and rank_pool(pool, 5).leaf_sets.shape[0] <= 5


def test_old_preset_and_owt_keywords_warn_and_match():
    img = _img()
    new = proposals(img, n=15, method="scg", contours=GPb("medium", owt="plain", multiscale=False))
    with pytest.warns(DeprecationWarning, match="deprecated"):
        old = proposals(img, n=15, preset="scg", owt="plain")
    np.testing.assert_array_equal(old.leaf_sets, new.leaf_sets)
    assert legacy_preset("mcg") == ("mcg", PROPOSAL_GPB)
    assert legacy_preset("scg-quality", "plain")[1] == GPb("quality", owt="plain", multiscale=False)
    with pytest.raises(ValueError, match="`preset`"):
        legacy_preset("nope")
    with pytest.raises(ValueError, match="`owt` applies to gPb"):
        proposals(img, n=5, contours="gpb", owt="plain")
    with pytest.raises(TypeError, match="unexpected keyword"):
        proposals(img, n=5, colour=True)
