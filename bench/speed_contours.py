"""Per-stage timing of the gPb contour detector (cues, mPb, sPb, gPb) on one BSDS image.

Methodology (STYLE.md section 8): each stage is run once to warm up (its first-call time,
which includes numba compilation or cache loading, is reported apart as ``first_call_s``), then
``--repeat`` times; we report the median and IQR of the wall time and the median process CPU
time (all threads). Peak memory: ``tracemalloc`` peak of the numpy/Python allocations of each
stage, plus the process peak RSS at the end. The machine may be shared: the 1-minute load
average is recorded before and after. Public API only (plus the public stage functions).

Usage::

    python bench/speed_contours.py [--image PATH] [--preset quality|balanced|fast|mcg|all] [--repeat 5]
                                   [--json OUT] [--cold-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_IMAGE = Path(os.environ.get("BOTTOMUP_DATA", ROOT.parent / "shared" / "data")) / (
    "bsds500/data/images/val/101085.jpg"
)


def _time(fn, repeat):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    walls, cpus, peaks = [], [], []
    for _ in range(repeat):
        tracemalloc.start()
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    q = statistics.quantiles(walls, n=4) if len(walls) >= 2 else [walls[0]] * 3
    return out, {
        "median_s": statistics.median(walls),
        "iqr_s": q[2] - q[0],
        "cpu_median_s": statistics.median(cpus),
        "first_call_s": first,
        "compile_s": max(0.0, first - statistics.median(walls)),
        "peak_traced_mb": max(peaks) / 2**20,
    }


def run(image_path, presets, repeat):

    from bottomup.io import read_image
    from bottomup.validate import check_image

    img = check_image(read_image(str(image_path)))
    results = []
    for preset in presets:
        results.extend(_run_preset(img, preset, repeat))
    return results, img.shape


def _run_preset(img, preset, repeat):
    """Time every stage of one preset; the lambdas run immediately inside ``_time``."""
    import numpy as np

    from bottomup.contours import PRESETS, gpb
    from bottomup.contours.gpb import preset_image
    from bottomup.contours.mpb import MPB_WEIGHTS_COLOR, mpb, mpb_nmax, smoothed_sum
    from bottomup.contours.spectral import ic_affinity, ncut_eigenvectors, spb_from_eigenvectors
    from bottomup.cues import hist_gradient, quantize, rgb_to_gray, rgb_to_lab, textons
    from bottomup.cues.gradients import OrientedCues

    cfg = PRESETS[preset]
    steps = cfg["steps"] or {}
    rows = []

    def add(stage, stats, group):
        rows.append({"preset": preset, "stage": stage, "group": group, **stats})

    work = preset_image(img, preset)  # the cues of the `fast` preset run on a resized copy
    lab, st = _time(lambda: rgb_to_lab(work), repeat)
    add("lab", st, "mpb")
    qs = [quantize(lab[..., i]) for i in range(3)]
    tex, st = _time(lambda: textons(rgb_to_gray(work), cfg["n_textons"], sigmas=cfg["texton_sigmas"],
                                    rng=0), repeat)
    add("textons", st, "mpb")
    chans = {"L": (qs[0], 25, 2.5, cfg["radii_l"]), "a": (qs[1], 25, 1.25, cfg["radii_ab"]),
             "b": (qs[2], 25, 1.25, cfg["radii_ab"]),
             "T": (tex, int(tex.max()) + 1, 0.0, cfg["radii_t"])}  # fmt: skip
    maps, names, radii = [], [], []
    for letter, (labels, nb, sig, rads) in chans.items():
        for r in rads:
            g, st = _time(
                lambda labels=labels, r=r, nb=nb, sig=sig: hist_gradient(
                    labels, r, n_bins=nb, bin_sigma=sig, step=steps.get(r, 1)
                ),
                repeat,
            )
            add(f"gradient_{letter}{r}", st, "mpb")
            maps.append(g)
            names.append(f"{letter}{r}")
            radii.append(r)
    cues = OrientedCues(np.stack(maps), tuple(names), tuple(radii))
    m, st = _time(lambda: mpb(cues), repeat)
    add("parabola_fit_and_sum", st, "mpb")
    mn, st = _time(lambda: mpb_nmax(m), repeat)
    add("nms_mpb", st, "spb")
    band, st = _time(lambda: ic_affinity(mn, cfg["ic_radius"]), repeat)
    add("affinity", st, "spb")
    (lam, vec), st = _time(
        lambda: ncut_eigenvectors(band, cfg["n_vec"], n_levels=cfg["n_levels"]), repeat
    )
    add("eigenvectors_dncuts", st, "spb")
    _, st = _time(lambda: spb_from_eigenvectors(lam, vec), repeat)
    add("spb_derivatives", st, "spb")
    _, st = _time(lambda: smoothed_sum(cues, MPB_WEIGHTS_COLOR), repeat)
    add("gpb_cue_sum (extra parabola fits)", st, "gpb")
    c, st = _time(lambda: gpb(img, preset), repeat)
    add("gpb_end_to_end", st, "total")
    _, st = _time(lambda: c.thin(), repeat)
    add("thin (nms of gpb)", st, "total")
    for group in ("mpb", "spb"):
        sel = [r for r in rows if r["group"] == group]
        rows.append({
            "preset": preset, "stage": f"sum_{group}", "group": "sum",
            "median_s": sum(r["median_s"] for r in sel),
            "cpu_median_s": sum(r["cpu_median_s"] for r in sel),
        })  # fmt: skip
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--preset", default="all", help="a key of bottomup.contours.PRESETS, or all")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--cold-cache",
        action="store_true",
        help="use an empty NUMBA_CACHE_DIR so first_call_s includes compilation",
    )
    args = ap.parse_args(argv)
    if args.cold_cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba_cold_")
    import numba
    import numpy as np
    import scipy

    from bottomup.contours import PRESETS  # after NUMBA_CACHE_DIR is set

    if args.preset != "all" and args.preset not in PRESETS:
        ap.error(f"--preset must be one of {[*PRESETS, 'all']}, got {args.preset!r}")

    load0 = os.getloadavg()[0]
    presets = list(PRESETS) if args.preset == "all" else [args.preset]
    results, shape = run(args.image, presets, args.repeat)
    load1 = os.getloadavg()[0]
    try:
        commit = subprocess.check_output(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], text=True
        ).strip()
    except Exception:  # pragma: no cover
        commit = None
    meta = {
        "image": str(args.image), "shape": list(shape), "repeat": args.repeat,
        "git_commit": commit, "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "n_cpus": os.cpu_count(), "loadavg_1min_before": load0, "loadavg_1min_after": load1,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cold_cache": args.cold_cache,
    }  # fmt: skip
    for r in results:
        extra = f"  first {r['first_call_s']:.3f}" if "first_call_s" in r else ""
        print(f"{r['preset']:8s} {r['stage']:36s} median {r['median_s']:.3f} s  "
              f"cpu {r['cpu_median_s']:.3f} s{extra}")  # fmt: skip
    print(f"load average {load0:.2f} -> {load1:.2f}; peak RSS {meta['peak_rss_mb']:.0f} MB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"metadata": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
