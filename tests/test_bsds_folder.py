"""Folder evaluation (bench/bsds.py, bottomup evaluate): files, cache, errors, the CLI."""

import json

import numpy as np
import pytest
import scipy.io as sio

from bottomup.cli import main as cli_main
from bottomup.io import write_ucm2
from bottomup.metrics.bsds import evaluate_folder


def write_gt(path, segs):
    """Write a BSDS-style groundTruth .mat (cell array of structs)."""
    cell = np.empty((1, len(segs)), dtype=object)
    for k, s in enumerate(segs):
        b = np.zeros_like(s, dtype=np.uint8)
        # mark the left/upper pixel of each label change: where ucm2[2::2, 2::2] puts it
        b[:, :-1] |= (s[:, 1:] != s[:, :-1]).astype(np.uint8)
        b[:-1, :] |= (s[1:, :] != s[:-1, :]).astype(np.uint8)
        cell[0, k] = {"Segmentation": (s + 1).astype(np.uint16), "Boundaries": b}
    sio.savemat(path, {"groundTruth": cell})


def ucm2_from_labels(labels, strength=0.6):
    h, w = labels.shape
    u = np.zeros((2 * h + 1, 2 * w + 1))
    u[1::2, 2:-1:2] = (labels[:, 1:] != labels[:, :-1]) * strength
    u[2:-1:2, 1::2] = (labels[1:, :] != labels[:-1, :]) * strength
    for r in range(0, 2 * h + 1, 2):
        for c in range(0, 2 * w + 1, 2):
            nb = [u[rr, cc] for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                  if 0 <= rr < 2 * h + 1 and 0 <= cc < 2 * w + 1]
            u[r, c] = max(nb)
    return u


@pytest.fixture
def folders(tmp_path):
    gt_dir = tmp_path / "gt"
    pred_dir = tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        lab = np.zeros((30, 40), int)
        lab[:, 20 + k:] = 1
        lab[15:, :10] = 2
        write_gt(gt_dir / f"im{k}.mat", [lab, np.where(lab == 2, 0, lab)])
        noisy = lab.copy()
        noisy[rng.integers(0, 30), :] = 3 if k == 0 else noisy[0]
        write_ucm2(pred_dir / f"im{k}.mat", ucm2_from_labels(noisy))
    return pred_dir, gt_dir, tmp_path


def test_folder_figures_and_cache(folders):
    pred, gt, tmp = folders
    cache = tmp / "cache"
    fig = evaluate_folder(pred, gt, cache_dir=cache, progress=False)
    for key in ("ods", "ois", "ap", "r50", "covering_ods", "covering_ois", "covering_best",
                "pri_ods", "pri_ois", "vi_ods", "vi_ois", "n_images"):
        assert fig[key] is not None
    assert fig["n_images"] == 3 and fig["n_cached"] == 0
    assert 0.8 < fig["ods"] <= 1.0 and fig["covering_best"] > 0.7
    again = evaluate_folder(pred, gt, cache_dir=cache, progress=False)
    assert again["n_cached"] == 3
    assert again["ods"] == fig["ods"] and again["vi_ois"] == fig["vi_ois"]


def test_png_predictions_have_no_region_keys(folders):
    import cv2

    pred, gt, tmp = folders
    png_dir = tmp / "png"
    png_dir.mkdir()
    from bottomup.io import read_ucm2

    for k in range(3):
        u = read_ucm2(pred / f"im{k}.mat")
        cv2.imwrite(str(png_dir / f"im{k}.png"), np.round(u[2::2, 2::2] * 255).astype(np.uint8))
    fig = evaluate_folder(png_dir, gt, cache_dir=None, progress=False)
    ucm = evaluate_folder(pred, gt, cache_dir=None, progress=False)
    assert fig["covering_ods"] is None
    assert fig["ods"] == pytest.approx(ucm["ods"], abs=0.02)


def test_errors_name_the_file(folders):
    pred, gt, tmp = folders
    (pred / "im1.mat").unlink()
    with pytest.raises(FileNotFoundError, match="im1"):
        evaluate_folder(pred, gt, cache_dir=None, progress=False)
    (pred / "im1.mat").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="im1.mat"):
        evaluate_folder(pred, gt, cache_dir=None, progress=False)
    np.save(pred / "im1.npy", np.zeros((31, 40)))
    (pred / "im1.mat").unlink()
    with pytest.raises(ValueError, match="im1.npy.*shape"):
        evaluate_folder(pred, gt, cache_dir=None, progress=False)
    bad = np.zeros((30, 40))
    bad[3, 3] = np.nan
    np.save(pred / "im1.npy", bad)
    with pytest.raises(ValueError, match="im1.npy.*NaN"):
        evaluate_folder(pred, gt, cache_dir=None, progress=False)
    with pytest.raises(FileNotFoundError, match="nope"):
        evaluate_folder(pred, gt, ids=["nope"], cache_dir=None, progress=False)


def test_cli_evaluate_and_bench_script(folders, capsys):
    pred, gt, tmp = folders
    out = tmp / "o.json"
    plot = tmp / "pr.png"
    rc = cli_main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(out),
                   "--plot", str(plot), "--no-cache", "--quiet"])
    assert rc == 0
    fig = json.loads(out.read_text())
    assert fig["n_images"] == 3 and "curve" in fig
    assert plot.stat().st_size > 1000
    assert "ods" in capsys.readouterr().out
    rc = cli_main(["evaluate", "--pred", str(tmp / "missing"), "--gt", str(gt), "--quiet"])
    assert rc == 1
    assert "not found" in capsys.readouterr().err


def test_workers_two_equals_one(folders):
    pred, gt, _ = folders
    a = evaluate_folder(pred, gt, cache_dir=None, progress=False, workers=1)
    b = evaluate_folder(pred, gt, cache_dir=None, progress=False, workers=2)
    assert a["curve"] == b["curve"] and a["covering_ods"] == b["covering_ods"]


def test_cache_key_covers_protocol_files_and_code(folders, monkeypatch):
    """Each ingredient of the per-image cache key, changed alone, is a miss; unchanged, a hit."""
    from bottomup.io import cache as cache_mod
    from bottomup.io import read_ucm2
    from bottomup.metrics.boundary import BoundaryParams

    pred, gt, tmp = folders
    cache = tmp / "cache"

    def n_cached(**kw):
        return evaluate_folder(pred, gt, cache_dir=cache, progress=False, **kw)["n_cached"]

    assert n_cached() == 0
    assert n_cached() == 3
    assert n_cached(params=BoundaryParams(n_thresholds=50)) == 0  # the protocol
    assert n_cached(params=BoundaryParams(max_dist=0.01)) == 0
    assert n_cached(regions=False) == 0
    u = read_ucm2(pred / "im1.mat")
    u[u > 0] = 0.5  # same boundaries, another strength: a new prediction file
    write_ucm2(pred / "im1.mat", u)
    assert n_cached() == 2
    lab = np.zeros((30, 40), int)
    lab[:, 7:] = 1
    write_gt(gt / "im2.mat", [lab])  # the ground truth
    assert n_cached() == 2
    assert n_cached() == 3
    monkeypatch.setattr(cache_mod, "code_version", lambda *m: "edited sources")  # the code
    assert n_cached() == 0
