"""Golden outputs of every public entry point, to prove that a refactor changes nothing.

``record DIR`` writes the outputs of the public entry points on a fixed small set (10 BSDS500 val
images, 5 MSRC val images) to ``DIR`` (one ``.npz`` per item and an ``index.json``); ``check DIR``
recomputes them and compares: arrays from numpy/numba stages must be identical, arrays that went
through torch within ``1e-6``. Exit status 1 when anything differs, with the item and the largest
difference.

Usage::

    python bench/golden.py record /tmp/golden          # on the commit you start from
    python bench/golden.py check /tmp/golden           # after every step
    python bench/golden.py check /tmp/golden --only 'segment/*'   # a subset (fnmatch pattern)

The data comes from ``$BOTTOMUP_DATA`` (BSDS500 and MSRC-v2 as laid out by ``bottomup.io``).
Calls use the spellings the package documents; where a spelling changes, the old one must keep
working (with a deprecation warning) for one release, which this script also proves.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

BSDS_IDS = ["101085", "101087", "102061", "103070", "105025", "106024", "108005", "108070",
            "108082", "109053"]
MSRC_IDS = ["10_14_s", "10_1_s", "10_23_s", "11_13_s", "11_27_s"]
#: Proposals run on the first images only (MCG costs ~8 s per image).
N_PROPOSAL_IMAGES = 5
TORCH_ATOL = 1e-6
#: Outputs that are timings, not results: never compared.
UNTIMED = {"seconds"}


def _data_root() -> Path:
    root = os.environ.get("BOTTOMUP_DATA")
    if not root:
        sys.exit("golden: set BOTTOMUP_DATA to the folder holding bsds500/ and msrc/")
    return Path(root)


def _sobel(image):
    """A plain user edge detector: Sobel magnitude of the gray image, 8 orientations."""
    from scipy import ndimage as ndi

    g = image.mean(axis=2)
    gr, gc = ndi.sobel(g, 0), ndi.sobel(g, 1)
    mag = np.hypot(gr, gc)
    mag = mag / max(mag.max(), 1e-12)
    theta = np.arange(8) * np.pi / 8
    oriented = np.abs(np.cos(theta)[:, None, None] * gc[None] + np.sin(theta)[:, None, None] * gr[None])
    oriented = oriented / max(oriented.max(), 1e-12)
    return mag, oriented


def _seeds(shape):
    """Two fixed scribbles (label 1 top-left, label 2 bottom-right)."""
    s = np.zeros(shape, np.int32)
    h, w = shape
    s[h // 4, w // 8: w // 3] = 1
    s[3 * h // 4, 2 * w // 3: 7 * w // 8] = 2
    return s


def _items(root: Path):
    """Yield ``(name, torch_used, thunk)``; each thunk returns a dict of arrays."""
    import bottomup
    from bottomup.io import read_bsds_gt, read_image
    from bottomup.metrics.bsds import evaluate_image

    bsds = root / "bsds500" / "data"
    imgs = {i: read_image(bsds / "images" / "val" / f"{i}.jpg") for i in BSDS_IDS}

    def seg(img, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return {"ucm2": bottomup.segment(img, **kw).to_ucm2()}

    configs = {  # name -> (keywords of segment, torch used)
        "default": ({}, False),
        "quality_x1": ({"multiscale": False}, False),
        "balanced": ({"preset": "balanced"}, False),
        "fast": ({"preset": "fast"}, False),
        "mcg_preset": ({"preset": "mcg"}, False),
        "fast_plain": ({"preset": "fast", "owt": "plain"}, False),
        "fast_ridge": ({"preset": "fast", "owt": "ridge"}, False),
        "fast_seed1": ({"preset": "fast", "seed": 1}, False),
        "fast_learned_arcs": ({"preset": "fast", "arcs": "learned"}, False),
        "fast_multiscale": ({"preset": "fast", "multiscale": True}, False),
        "learned": ({"contours": "learned"}, True),
        "learned_mean": ({"contours": "learned", "arcs": "mean"}, True),
        "learned_multiscale": ({"contours": "learned", "multiscale": True}, True),
    }
    for cfg, (kw, torch_used) in configs.items():
        for i in BSDS_IDS:
            yield f"segment/{cfg}/{i}", torch_used, (lambda img=imgs[i], kw=kw: seg(img, **kw))

    for i in BSDS_IDS:
        def sobel_ucm(img=imgs[i]):
            return {"ucm2": bottomup.ucm(*_sobel(img)).to_ucm2()}

        yield f"ucm/sobel/{i}", False, sobel_ucm

    for i in BSDS_IDS[:3]:
        def interactive(img=imgs[i]):
            h = bottomup.segment(img, preset="fast")
            return {"labels": bottomup.interactive.segment(h, _seeds(img.shape[:2])),
                    "superpixels": h.cut(n_regions=50)}

        yield f"interactive/{i}", False, interactive

    for i in BSDS_IDS:
        def metrics(img=imgs[i], i=i):
            h = bottomup.segment(img)
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, f"{i}.npz")
                bottomup.write_ucm2(p, h.to_ucm2())
                r = evaluate_image(p, bsds / "groundTruth" / "val" / f"{i}.mat")
            return {k: np.asarray(v) for k, v in r.items()
                    if k not in UNTIMED and isinstance(v, (np.ndarray, list, float, int))}

        yield f"metrics/bsds/{i}", False, metrics
    _ = read_bsds_gt  # the metrics read the ground truth through evaluate_image

    for preset in ("scg", "mcg"):
        for contours in (None, "learned"):
            for i in BSDS_IDS[:N_PROPOSAL_IMAGES]:
                def props(img=imgs[i], preset=preset, contours=contours):
                    c = bottomup.mcg.proposals(img, n=200, preset=preset, contours=contours)
                    return {"leaf_labels": c.leaf_labels, "leaf_sets": c.leaf_sets, "scores": c.scores}

                yield (f"proposals/{preset}_{contours or 'gpb'}/{i}", contours is not None, props)

    msrc = root / "msrc"
    for i in MSRC_IDS:
        def deep_item(i=i):
            try:
                from deep.contours import learned_contours
            except ImportError:  # before the redesign
                from deep.contours.api import learned_contours
            from deep.crf import dense_crf, unary_from_probabilities
            from deep.segmenter import DeepSegmenter

            img = read_image(msrc / "images" / f"{i}.png")
            seg_ = DeepSegmenter.load()
            r = seg_.predict(img)
            pb, _ = learned_contours(img)
            q = dense_crf(unary_from_probabilities(r.probs), img, contours=pb)
            return {"labels": r.labels, "probs": r.probs, "inst_masks": r.instances.masks,
                    "inst_classes": r.instances.classes, "inst_scores": r.instances.scores,
                    "crf": q, "crf_plain": dense_crf(unary_from_probabilities(r.probs), img)}

        yield f"deep/{i}", True, deep_item


def _compute(root, only):
    for name, torch_used, thunk in _items(root):
        if only and not any(fnmatch.fnmatch(name, p) for p in only):
            continue
        t = time.perf_counter()
        out = {k: np.asarray(v) for k, v in thunk().items()}
        yield name, torch_used, out, time.perf_counter() - t


def _fname(name: str) -> str:
    return name.replace("/", "__") + ".npz"


def record(args) -> int:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    if (out / "index.json").exists():
        index = json.loads((out / "index.json").read_text())
    for name, torch_used, arrays, dt in _compute(_data_root(), args.only):
        np.savez_compressed(out / _fname(name), **arrays)
        index[name] = {"torch": torch_used, "keys": sorted(arrays), "seconds": round(dt, 3)}
        print(f"recorded {name} ({dt:.1f} s)", flush=True)
        (out / "index.json").write_text(json.dumps(index, indent=1))
    return 0


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if a.dtype == bool or b.dtype == bool:
        return float(np.count_nonzero(a != b))
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def check(args) -> int:
    ref = Path(args.dir)
    index = json.loads((ref / "index.json").read_text())
    bad, n = [], 0
    for name, torch_used, arrays, dt in _compute(_data_root(), args.only):
        if name not in index:
            print(f"NEW   {name}: not in the record", flush=True)
            continue
        n += 1
        with np.load(ref / _fname(name), allow_pickle=False) as z:
            want = {k: z[k] for k in z.files if k not in UNTIMED}
        tol = TORCH_ATOL if torch_used else 0.0
        worst = {k: (_diff(arrays[k], want[k]) if k in arrays else float("inf")) for k in want}
        extra = sorted(set(arrays) - set(want))
        failed = {k: d for k, d in worst.items() if d > tol}
        if failed or extra:
            bad.append(name)
            print(f"DIFF  {name}: {failed} {'new keys ' + str(extra) if extra else ''}", flush=True)
        else:
            print(f"ok    {name} ({dt:.1f} s, max diff {max(worst.values(), default=0):.2g})", flush=True)
    print(f"{n - len(bad)} identical, {len(bad)} differ" + (f": {bad}" if bad else ""))
    return 1 if bad or n == 0 else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("record", "check"))
    p.add_argument("dir", help="folder of the record")
    p.add_argument("--only", action="append", metavar="PATTERN",
                   help="items whose name matches this fnmatch pattern (repeatable)")
    args = p.parse_args(argv)
    return record(args) if args.action == "record" else check(args)


if __name__ == "__main__":
    raise SystemExit(main())
