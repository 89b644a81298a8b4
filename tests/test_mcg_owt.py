"""The oriented-watershed choice of the proposal hierarchies (bottomup.mcg ``owt``)."""

import os

import numpy as np
import pytest

from bottomup.mcg import proposals
from bottomup.mcg.pipeline import DEFAULT_OWT, OWT_CHOICES, hierarchy_for
from bottomup.mcg.ranking import RANKER_PATH, ranker_path


def _img():
    rng = np.random.default_rng(1)
    img = 0.3 + 0.1 * rng.random((40, 48, 3))
    img[8:28, 10:30] = [0.9, 0.1, 0.1]
    img[20:36, 30:44] = [0.1, 0.2, 0.9]
    return img


@pytest.mark.parametrize("owt", OWT_CHOICES)
def test_hierarchy_for_passes_owt_to_segment(owt):
    from bottomup.pipeline import segment

    img = _img()
    np.testing.assert_array_equal(hierarchy_for(img, "scg", owt=owt).to_ucm2(),
                                  segment(img, "mcg", owt=owt).to_ucm2())


def test_default_owt_and_rankers_shipped():
    assert DEFAULT_OWT in OWT_CHOICES
    assert ranker_path("plain") == RANKER_PATH
    for owt in OWT_CHOICES:
        assert os.path.exists(ranker_path(owt))
    img = _img()
    a = proposals(img, n=20)
    b = proposals(img, n=20, owt=DEFAULT_OWT)
    np.testing.assert_array_equal(a.leaf_sets, b.leaf_sets)


def test_bad_owt():
    with pytest.raises(ValueError, match="`owt`"):
        proposals(_img(), n=5, owt="ridge")
    with pytest.raises(ValueError, match="`owt`"):
        ranker_path("ridge")


def test_mcg_preset_has_its_own_ranker():
    """The multiscale hierarchy is scored by its own forest (steepest), else the single-scale one."""
    from bottomup.mcg.pipeline import candidate_pool, rank_pool
    from bottomup.mcg.ranking import load_ranker

    assert ranker_path("steepest", "mcg") != ranker_path("steepest", "scg")
    assert os.path.basename(ranker_path("steepest", "mcg")) == "mcg_ranker_steepest.npz"
    assert ranker_path("plain", "mcg") == ranker_path("plain", "scg")
    assert ranker_path("steepest", "scg-quality") == ranker_path("steepest", "scg")
    with pytest.raises(ValueError, match="`preset`"):
        ranker_path("steepest", "selective")
    # proposals(preset="mcg") without a ranker uses the mcg forest: same as passing it explicitly
    img = _img()
    h = hierarchy_for(img, "mcg")
    a = proposals(img, n=30, preset="mcg", hierarchy=h)
    b = proposals(img, n=30, preset="mcg", hierarchy=h,
                  ranker=load_ranker(ranker_path("steepest", "mcg")))
    np.testing.assert_array_equal(a.leaf_sets, b.leaf_sets)
    np.testing.assert_allclose(a.scores, b.scores)
    pool = candidate_pool(h)
    assert pool.features.shape[0] > 0 and rank_pool(pool, 5).leaf_sets.shape[0] <= 5
