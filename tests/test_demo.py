"""``bottomup demo``: the whole engine on the bundled image writes its figure (issue #9)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("matplotlib")


def test_demo_writes_figure_and_ucm2(tmp_path):
    from bottomup.demo import demo
    from bottomup.io import read_ucm2

    have_torch = importlib.util.find_spec("torch") is not None
    info = demo(tmp_path, preset="fast")
    fig = tmp_path / "demo.png"
    assert fig.is_file() and fig.stat().st_size > 10_000
    u = read_ucm2(info["ucm2"])
    assert u.ndim == 2 and u.shape[0] % 2 == 1 and np.isfinite(u).all() and u.max() > 0
    assert {"contours", "owt_ucm", "scg_proposals"} <= set(info["seconds"])
    assert ("deep_heads" in info["seconds"]) == have_torch
