"""Fast checks of the regression tier's machinery (default tier): the pins file and the comparison."""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_bench

pin_figures = load_bench("pin_figures")


def test_every_group_is_pinned_on_the_declared_subsets():
    pins = json.loads(pin_figures.PINS.read_text())
    assert list(pins["groups"]) == list(pin_figures.GROUPS)
    assert pins["subsets"]["bsds_val"] == list(pin_figures.BSDS_IDS)
    assert pins["subsets"]["msrc_val"] == list(pin_figures.MSRC_IDS)
    assert pins["subsets"]["proposal_images"] == pin_figures.N_PROPOSAL_IMAGES
    for group, figures in pins["groups"].items():
        assert figures["n_images"] > 0, group
        for k, v in figures.items():
            if k.startswith("vi_"):
                assert 0 < v < 10, (group, k, v)
            elif not k.startswith("n_"):
                assert 0 <= v <= 1, (group, k, v)


def test_tolerances_catch_the_regressions_the_tier_guards():
    # a real regression of .005 ODS or .01 mIoU must break the test
    assert pin_figures.tolerance("ods") < 0.005
    assert pin_figures.tolerance("miou") < 0.01
    assert pin_figures.tolerance("n_objects") == 0


def test_compare_names_what_moved():
    pinned = {"ods": 0.700, "vi_ods": 1.800, "n_objects": 12, "apr50": None}
    assert pin_figures.compare(pinned, {"ods": 0.7009, "vi_ods": 1.8019, "n_objects": 12,
                                        "apr50": None}) == []
    moved = pin_figures.compare(pinned, {"ods": 0.695, "vi_ods": 1.8021, "n_objects": 13,
                                         "apr50": 0.3})
    assert [m.split(":")[0] for m in moved] == ["apr50", "n_objects", "ods", "vi_ods"]
    assert "-0.00500" in [m for m in moved if m.startswith("ods")][0]
    # a figure that disappears or appears is a change too
    assert pin_figures.compare({"ods": 0.7}, {"ois": 0.7}) == ["ods: pinned 0.7, now None",
                                                               "ois: pinned None, now 0.7"]


def test_compute_rejects_an_unknown_group():
    with pytest.raises(ValueError, match="unknown groups"):
        pin_figures.compute(["bsds/nothing"], ".")
