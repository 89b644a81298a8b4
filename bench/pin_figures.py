"""Pinned figures of the regression tier (``pytest -m regression``): compute them, or write the pins.

The regression tier (``tests/regression/test_regression.py``) recomputes every group below on a
fixed subset of the validation data and compares it with ``tests/regression/pins.json``, which
this script writes. Groups (all on the public API, scored with the metric code the benchmarks use):

``bsds/segment``, ``bsds/segment_learned``
    ``bottomup.segment(img)`` and ``bottomup.segment(img, contours="learned")`` on the 10 BSDS500
    val images of :data:`BSDS_IDS`, their ucm2 scored by ``bottomup.metrics.bsds.evaluate_folder``
    (what ``bench/bsds.py`` / ``bottomup evaluate`` run): ODS, OIS, AP, R50, Covering, PRI, VI.
``proposals/{scg,mcg}_{gpb,learned}``
    ``bottomup.mcg.proposals(img, n=1000, preset=...)`` with gPb (the default) and with
    ``contours="learned"`` on the first :data:`N_PROPOSAL_IMAGES` images of :data:`BSDS_IDS`,
    scored as ``bench/proposals.py --dataset bsds`` scores masks (objects: every human segment of
    every annotator, those under 0.1% of the image left out: 326 objects in the 3 images, where
    MSRC val's first five images hold 9 thing objects): ABO and recall at 0.5 / 0.7 with the
    first 100 and 1000 candidates.
``msrc/deep``, ``msrc/deep_crf``
    ``deep.segment`` with the shipped MSRC-21 heads (``DeepSegmenter.load().predict``, which is
    what ``deep.segment`` calls, so the probabilities are at hand for the CRF) on the 10 MSRC val
    images of :data:`MSRC_IDS`, scored by ``bench/msrc.py eval``'s ``_scores`` (pixel accuracy,
    mean class accuracy, mIoU, fw-IoU, AP^r at 0.5 and 0.7, mask AP); then the heads' CRF pass
    exactly as ``bench/msrc.py eval --crf`` runs it (``DeepSegmenter.crf_labels``, with the
    dense-CRF parameters the weights carry).
    The shipped heads are trained on train + val (since 2026-12-07), so these are training-set
    figures: they catch a change of behaviour, they do not measure accuracy (that is the
    cross-validation of ``bench/msrc.py cv``).
``msrc/maskrcnn``
    ``deep.segment(image, model="maskrcnn")``, the shipped Mask R-CNN, on the same 10 images:
    AP^r at 0.5 and 0.7 and mask AP, scored as the heads' instances.

When to regenerate: only when a deliberate change moves a pinned figure. Rerun it, and say in the
commit which figures moved, by how much, and why::

    BOTTOMUP_DATA=/path/to/data python bench/pin_figures.py                 # every group
    BOTTOMUP_DATA=/path/to/data python bench/pin_figures.py --only 'bsds/*' # some groups (fnmatch)

``--only`` rewrites the named groups and keeps the others. ``--print`` computes and prints without
writing. The data comes from ``$BOTTOMUP_DATA`` (``bsds500/`` and ``msrc/`` as laid out by
``bottomup.io``).

Tolerances (:data:`TOLERANCES`): the computation is deterministic on one machine (two runs in
separate processes agree to the last digit), so the tolerance only has to absorb floating-point
differences between machines and library builds (BLAS, SIMD paths, torch threads), which move these
figures by far less than 1e-3. 1e-3 on every figure in [0, 1] (a regression of .005 ODS or .01 mIoU
is 5 to 10 times larger); 2e-3 on VI, whose scale is about 1.5 to 2 (the same relative bar);
counts (images, objects) must be equal.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: The pins' file, beside the test that reads it.
PINS = HERE.parent / "tests" / "regression" / "pins.json"
#: 10 BSDS500 val images (the first 10 ids of the split, as bench/golden.py).
BSDS_IDS = ("101085", "101087", "102061", "103070", "105025", "106024", "108005", "108070",
            "108082", "109053")
#: 10 MSRC val images (the first 10 names of ``msrc/val.txt``).
MSRC_IDS = ("10_14_s", "10_1_s", "10_23_s", "11_13_s", "11_27_s", "11_6_s", "12_23_s", "12_34_s",
            "12_7_s", "13_16_s")
#: Proposals cost most (MCG ~8 s per BSDS image unloaded); they run on the first images only.
N_PROPOSAL_IMAGES = 3
N_PROPOSALS = 1000

#: Absolute tolerance per figure (default for the others: :data:`DEFAULT_TOL`); see the module notes.
DEFAULT_TOL = 1e-3
TOLERANCES = {"vi_ods": 2e-3, "vi_ois": 2e-3, "n_images": 0, "n_objects": 0}


def tolerance(figure: str) -> float:
    """Absolute tolerance of a pinned figure."""
    return TOLERANCES.get(figure, DEFAULT_TOL)


# ---- the groups -------------------------------------------------------------------------------


def _bsds(root: Path, contours) -> dict:
    import bottomup
    from bottomup.io import read_image, write_ucm2
    from bottomup.metrics.bsds import evaluate_folder

    data = root / "bsds500" / "data"
    with tempfile.TemporaryDirectory(prefix="pins-bsds-") as tmp:
        for iid in BSDS_IDS:
            img = read_image(data / "images" / "val" / f"{iid}.jpg")
            h = bottomup.segment(img) if contours is None else bottomup.segment(img, contours=contours)
            write_ucm2(Path(tmp) / f"{iid}.npz", h.to_ucm2())
        fig = evaluate_folder(tmp, data / "groundTruth" / "val", ids=list(BSDS_IDS), cache_dir=None,
                              progress=False)
    keys = ("ods", "ois", "ap", "r50", "covering_ods", "covering_ois", "covering_best", "pri_ods",
            "pri_ois", "vi_ods", "vi_ois", "n_images")
    return {k: fig[k] for k in keys}


def _proposals(root: Path, preset: str, contours) -> dict:
    from bottomup.contours import get_source
    from bottomup.io import read_image
    from bottomup.io.datasets import proposal_objects, split_images
    from bottomup.mcg import proposals
    from bottomup.mcg.propose import legacy_preset
    from bottomup.metrics.proposals import ProposalParams, ProposalRecall

    bsds = root / "bsds500"
    names = BSDS_IDS[:N_PROPOSAL_IMAGES]
    items = dict(split_images("bsds", bsds, "val"))
    method, source = legacy_preset(preset)
    source = get_source(contours) if contours else source
    params = ProposalParams(n_candidates=(100, N_PROPOSALS), iou_thresholds=(0.5, 0.7))
    metric = ProposalRecall(params)
    for name in names:
        gt, void = proposal_objects("bsds", bsds, "val", name)
        if len(gt) == 0:  # as bench/proposals.py: an image without objects adds nothing
            continue
        c = proposals(read_image(items[name]), n=N_PROPOSALS, method=method, contours=source)
        metric.update_leaves(gt, c.leaf_labels, c.leaf_sets, void=void)
    s = metric.compute()
    return {"abo@100": float(s.abo[0]), "abo@1000": float(s.abo[1]),
            "recall50@1000": float(s.recall[0][1]), "recall70@100": float(s.recall[1][0]),
            "recall70@1000": float(s.recall[1][1]), "n_objects": int(s.n_objects),
            "n_images": len(names)}


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _msrc_layout(root: Path, work: Path):
    """The MSRC-21 layout of :data:`MSRC_IDS` only (as ``bench/msrc.py`` converts the whole split)."""
    from deep.data import msrc_to_layout

    src = work / "msrc"
    src.mkdir()
    for sub in ("images", "groundTruth"):
        (src / sub).symlink_to(root / "msrc" / sub, target_is_directory=True)
    (src / "val.txt").write_text("\n".join(MSRC_IDS) + "\n")
    return msrc_to_layout(src, work / "layout", splits=("val",))


def _deep(root: Path) -> dict:
    from deep.data import score_results
    from deep.segmenter import DeepSegmenter

    with tempfile.TemporaryDirectory(prefix="pins-msrc-") as tmp:
        ds = _msrc_layout(root, Path(tmp))
        seg = DeepSegmenter.load()  # the shipped weights, as deep.segment
        rows, crf_rows = [], []
        for sample in ds:
            res = seg.predict(sample.image)
            rows.append((sample, res.labels, res.instances))
            crf_rows.append((sample, seg.crf_labels(res, sample.image), res.instances))
        n = len(ds.classes)
        out = score_results(ds, rows, n)
        crf = score_results(ds, crf_rows, n, with_instances=False)
    sem = ("pixel_acc", "mean_class_acc", "miou", "fw_iou")
    deep_fig = {k: float(out[k]) for k in (*sem, "apr50", "apr70", "mask_ap")}
    deep_fig["n_images"] = len(ds)
    crf_fig = {k: float(crf[k]) for k in sem}
    crf_fig["n_images"] = len(ds)
    return {"msrc/deep": deep_fig, "msrc/deep_crf": crf_fig}


def _maskrcnn(root: Path) -> dict:
    from deep.data import score_results
    from deep.segmenter import MaskRCNNSegmenter, maskrcnn_weights_path

    with tempfile.TemporaryDirectory(prefix="pins-msrc-") as tmp:
        ds = _msrc_layout(root, Path(tmp))
        seg = MaskRCNNSegmenter.load(maskrcnn_weights_path())  # the shipped weights
        # Mask R-CNN has no semantic output: the ground truth stands in, only the instances count
        rows = [(sample, sample.labels, seg.predict(sample.image).instances) for sample in ds]
        out = score_results(ds, rows, len(ds.classes))
    fig = {k: float(out[k]) for k in ("apr50", "apr70", "mask_ap")}
    fig["n_images"] = len(ds)
    return {"msrc/maskrcnn": fig}


def _proposal_group(preset, contours):
    return lambda root: {f"proposals/{preset}_{contours or 'gpb'}": _proposals(root, preset, contours)}


#: group pattern -> function(data root) returning {group: {figure: value}} (one call may fill two
#: groups: the CRF runs on the deep pass's probabilities).
COMPUTE = {
    "bsds/segment": lambda root: {"bsds/segment": _bsds(root, None)},
    "bsds/segment_learned": lambda root: {"bsds/segment_learned": _bsds(root, "learned")},
    "proposals/scg_gpb": _proposal_group("scg", None),
    "proposals/mcg_gpb": _proposal_group("mcg", None),
    "proposals/scg_learned": _proposal_group("scg", "learned"),
    "proposals/mcg_learned": _proposal_group("mcg", "learned"),
    "msrc/deep": _deep,
    "msrc/deep_crf": _deep,
    "msrc/maskrcnn": _maskrcnn,
}
GROUPS = tuple(COMPUTE)
#: Groups that run torch (learned contours, deep heads): with 2 torch threads, as bench/msrc.py, so
#: that the figures do not depend on the thread count the test session left behind.
TORCH_GROUPS = ("bsds/segment_learned", "proposals/scg_learned", "proposals/mcg_learned",
                "msrc/deep", "msrc/deep_crf", "msrc/maskrcnn")


def compute(groups, root) -> tuple[dict, dict]:
    """Figures of ``groups`` (names of :data:`GROUPS`) on the data under ``root``.

    Returns
    -------
    figures : dict of {group: {figure: value}}
    seconds : dict of {group: wall seconds}
    """
    unknown = [g for g in groups if g not in COMPUTE]
    if unknown:
        raise ValueError(f"unknown groups {unknown}; choose among {GROUPS}")
    root = Path(root)
    figures, seconds = {}, {}
    for g in groups:
        if g in figures:
            continue  # filled by a call made for another group
        t0 = time.perf_counter()
        with _torch_threads(2) if g in TORCH_GROUPS else contextlib.nullcontext():
            got = COMPUTE[g](root)
        dt = time.perf_counter() - t0
        for k, v in got.items():
            figures[k] = v
            seconds[k] = dt / len(got)
    return {g: figures[g] for g in groups}, seconds


def compare(pinned: dict, figures: dict) -> list[str]:
    """Lines naming every figure that moved beyond its tolerance (empty: all hold)."""
    bad = []
    for k in sorted(set(pinned) | set(figures)):
        if k not in figures or k not in pinned:
            bad.append(f"{k}: pinned {pinned.get(k)!r}, now {figures.get(k)!r}")
            continue
        old, new = pinned[k], figures[k]
        if old is None or new is None:
            if old is not new:
                bad.append(f"{k}: pinned {old!r}, now {new!r}")
            continue
        if abs(new - old) > tolerance(k):
            bad.append(f"{k}: pinned {old:.5f}, now {new:.5f} ({new - old:+.5f}; tolerance {tolerance(k):g})")
    return bad


def _meta() -> dict:
    import numba

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=HERE).stdout.strip() or None
    except OSError:
        commit = None
    meta = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    try:
        import torch

        meta["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="fnmatch pattern of the groups to recompute (default: all)")
    ap.add_argument("--out", default=str(PINS), help=f"pins file (default {PINS})")
    ap.add_argument("--print", dest="dry", action="store_true", help="print the figures, write nothing")
    args = ap.parse_args(argv)
    root = os.environ.get("BOTTOMUP_DATA")
    if not root or not Path(root).is_dir():
        ap.error("set BOTTOMUP_DATA to the folder holding bsds500/ and msrc/")
    groups = [g for g in GROUPS if args.only is None or fnmatch.fnmatch(g, args.only)]
    if not groups:
        ap.error(f"--only {args.only!r} matches no group of {GROUPS}")
    figures, seconds = compute(groups, root)
    for g in groups:
        print(f"{g} ({seconds[g]:.0f} s): " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float)
                                                       else f"{k} {v}" for k, v in figures[g].items()))
    if args.dry:
        return 0
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.is_file() else {"groups": {}, "seconds": {}}
    doc["about"] = ("Figures the regression tier (pytest -m regression) must reproduce; written by "
                    "bench/pin_figures.py (see its docstring for when and how to regenerate).")
    doc["metadata"] = _meta()
    doc["subsets"] = {"bsds_val": list(BSDS_IDS), "msrc_val": list(MSRC_IDS),
                      "proposal_images": N_PROPOSAL_IMAGES, "n_proposals": N_PROPOSALS}
    doc["tolerances"] = {"default": DEFAULT_TOL, **TOLERANCES}
    doc["groups"].update(figures)
    doc["seconds"].update({g: round(seconds[g], 1) for g in groups})
    doc["groups"] = {g: doc["groups"][g] for g in GROUPS if g in doc["groups"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.part")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
