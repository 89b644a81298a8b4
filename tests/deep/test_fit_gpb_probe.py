"""bench/fit_gpb.py probe: joins its arc cache to bench/train_arcs.py's, arc by arc, and fits both scorers."""

from __future__ import annotations

import json

import numpy as np
from bench_scripts import load_bench


def test_probe_joins_the_two_caches_and_reports_both_scorers(tmp_path, capsys):
    from tests.test_fit_gpb import _two_image_bsds

    fit_gpb, train_arcs = load_bench("fit_gpb"), load_bench("train_arcs")
    root = _two_image_bsds(tmp_path)
    assert fit_gpb.main(["cache", "--root", str(root), "--cache", str(tmp_path / "ours")]) == 0
    assert train_arcs.main(["--root", str(root), "--contours", "gpb", "--cache", str(tmp_path / "arcs"),
                            "--out", str(tmp_path / "s.npz"), "--hold-every", "0", "--epochs", "2"]) == 0
    capsys.readouterr()
    # the two caches hold the same arcs in the same order: same targets and lengths
    with np.load(tmp_path / "ours" / "train_0.npz") as d:
        ours = d["y"], d["w"]
    (theirs,) = (tmp_path / "arcs").glob("train_0-*.npz")
    with np.load(theirs) as d:
        np.testing.assert_array_equal(d["y"], ours[0])
        np.testing.assert_array_equal(d["w"], ours[1])
    args = ["probe", "--cache", str(tmp_path / "ours"), "--arcs-cache", str(tmp_path / "arcs")]
    assert fit_gpb.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["n_fit"], out["n_held"], out["skipped"]) == (1, 1, [])  # image 0 held out, as train_arcs.py
    for key in ("mean_strength", "features20", "features20+channels13"):
        assert 0 <= out[key]["held_auc"] <= 1 and out[key]["held_bce"] > 0
