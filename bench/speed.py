"""Speed of the pipeline stages, side by side with the libraries that compute the same thing.

    python bench/speed.py                       # every registered stage
    python bench/speed.py --stage owt_ucm --json out/speed.json
    python bench/speed.py --list

Methodology (kornia ``benchmarks/README.md``, skimage asv ``peakmem_*``): each case runs once
cold (the first call, which includes numba's JIT compilation: by default the numba cache points to
a fresh empty folder so the compile is real, ``--warm-cache`` keeps the user's cache), then
``--warmup`` untimed calls, then ``--repeat`` timed calls; we report the median and the IQR.
Peak memory is the extra resident memory of one call (high-water mark reset through
/proc/self/clear_refs; numba's allocations are invisible to tracemalloc). Inputs are seeded.
``--json`` writes
``{"metadata": ..., "results": [...]}``.

Adding a stage: decorate a function ``f(ctx) -> list[dict]`` with ``@stage("name", "help")`` and
build its entries with :func:`measure`; ``ctx`` holds the parsed arguments and a shared cache of
inputs (``ctx.bsds_image()``, ``ctx.bsds_contours()``, ``ctx.synthetic(n)``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# name -> (function, help); filled by @stage
STAGES: dict[str, tuple[Callable, str]] = {}
# stages left out of a plain run (slow or memory-hungry); run them with --stage NAME
NOT_DEFAULT: set[str] = set()


def stage(name: str, help: str, *, default: bool = True):
    """Register a stage benchmark under ``name`` (``default=False``: only when asked for)."""

    def deco(fn):
        STAGES[name] = (fn, help)
        if not default:
            NOT_DEFAULT.add(name)
        return fn

    return deco


# ------------------------------------------------------------------------------------------------
# measurement


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise OSError(field)


def peak_memory_mb(fn: Callable[[], object]) -> float | None:
    """Extra peak resident memory (MiB) of one call of ``fn``, measured in this process.

    Resets the process's high-water mark (``/proc/self/clear_refs``), runs ``fn`` once and
    reports ``VmHWM - VmRSS`` at the start. Large arrays are mmap-ed and returned on free, so
    earlier calls do not hide this call's peak. (A forked child, used before, is killed by GNU
    OpenMP, numba's threading layer here, and deadlocks in torch's thread pool.) None where
    /proc is missing (not Linux).
    """
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # pragma: no cover - not permitted in some containers
        return None
    base = _status_mb("VmRSS")
    fn()
    return max(_status_mb("VmHWM") - base, 0.0)


def measure(
    fn: Callable[[], object], *, repeat: int, warmup: int, memory: bool = True, **info
) -> dict:
    """Time ``fn``: the first call apart, then median and IQR of ``repeat`` calls after warm-up."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        c0 = time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    out = dict(info)
    out.update(
        first_call_s=first,
        median_s=float(med),
        iqr_s=float(q3 - q1),
        min_s=float(min(times)),
        cpu_median_s=float(np.median(cpu)),
        repeat=repeat,
        peak_mem_mb=peak_memory_mb(fn) if memory else None,
    )
    return out


# ------------------------------------------------------------------------------------------------
# inputs


class Context:
    """Parsed arguments plus lazily built, cached inputs shared by the stages."""

    def __init__(self, args):
        self.args = args
        self._cache: dict = {}

    @property
    def data(self) -> Path | None:
        root = os.environ.get("BOTTOMUP_DATA")
        return Path(root) if root and Path(root).is_dir() else None

    def bsds_id(self) -> str | None:
        if self.data is None:
            return None
        files = sorted((self.data / "bsds500" / "ucm2" / "val").glob("*.mat"))
        return files[0].stem if files else None

    def bsds_contours(self) -> np.ndarray | None:
        """The original gPb-owt-ucm boundaries of one BSDS val image (``ucm2[2::2, 2::2]``)."""
        if "contours" not in self._cache:
            from bottomup.io import read_ucm2

            iid = self.bsds_id()
            self._cache["contours"] = (
                None
                if iid is None
                else read_ucm2(self.data / "bsds500" / "ucm2" / "val" / f"{iid}.mat")[
                    2::2, 2::2
                ].copy()
            )
        return self._cache["contours"]

    def bsds_image(self) -> np.ndarray | None:
        if "image" not in self._cache:
            from bottomup.io import read_image

            iid = self.bsds_id()
            path = (
                None
                if iid is None
                else self.data / "bsds500" / "data" / "images" / "val" / f"{iid}.jpg"
            )
            self._cache["image"] = read_image(path) if path is not None and path.exists() else None
        return self._cache["image"]

    def bsds_gradient(self) -> np.ndarray | None:
        """A dense contour map of the BSDS image: Lab Sobel magnitude in [0, 1] (many basins)."""
        if "gradient" not in self._cache:
            img = self.bsds_image()
            if img is None:
                self._cache["gradient"] = None
            else:
                import scipy.ndimage as ndi
                from skimage.color import rgb2lab

                lab = rgb2lab(img) / np.array([100.0, 255.0, 255.0])
                mag = np.sqrt(sum(ndi.sobel(lab[..., c], a) ** 2 for c in range(3) for a in (0, 1)))
                self._cache["gradient"] = mag / mag.max()
        return self._cache["gradient"]

    def synthetic(self, n: int) -> np.ndarray:
        """Smoothed seeded noise in [0, 1], ``n x n``."""
        key = ("syn", n)
        if key not in self._cache:
            import scipy.ndimage as ndi

            rng = np.random.default_rng(0)
            x = ndi.gaussian_filter(rng.random((n, n)), 2.0)
            x -= x.min()
            self._cache[key] = x / x.max()
        return self._cache[key]


def _contour_cases(ctx) -> list[tuple[str, np.ndarray]]:
    cases = []
    if ctx.bsds_contours() is not None:
        cases.append((f"bsds_{ctx.bsds_id()}_ucm2_contours", ctx.bsds_contours()))
    if ctx.bsds_gradient() is not None:
        cases.append((f"bsds_{ctx.bsds_id()}_lab_sobel", ctx.bsds_gradient()))
    if not ctx.args.no_sweep:
        for n in ctx.args.sizes:
            cases.append((f"synthetic_{n}", ctx.synthetic(n)))
    return cases


# ------------------------------------------------------------------------------------------------
# stages of the hierarchy part (bottomup.owt, bottomup.hierarchy, bottomup.interactive)


# ------------------------------------------------------------------------------------------------
# end-to-end stages (contours, segment) and the superpixel peers


def _bsds_image_or_synthetic(ctx):
    img = ctx.bsds_image()
    if img is None:
        rng = np.random.default_rng(0)
        img = np.clip(ctx.synthetic(256)[..., None] * 0.8 + 0.1 * rng.random((256, 256, 3)), 0, 1)
        return "synthetic_256", img
    return f"bsds_{ctx.bsds_id()}", img


@stage("gpb", "gPb contours (bottomup.contours.gpb), every preset; mPb/sPb split")
def bench_gpb(ctx) -> list[dict]:
    from bottomup.contours import PRESETS, gpb

    a = ctx.args
    case, img = _bsds_image_or_synthetic(ctx)
    out = []
    for preset in PRESETS:
        out.append(measure(lambda p=preset: gpb(img, p), repeat=max(3, a.repeat // 2), warmup=1,
                           stage="gpb", case=case, size=list(img.shape[:2]), impl=f"bottomup:{preset}"))
    return out


@stage("segment", "bottomup.segment end to end (gPb -> OWT -> UCM), every preset; quality also x1 only")
def bench_segment(ctx) -> list[dict]:
    from bottomup import segment
    from bottomup.contours import PRESETS

    a = ctx.args
    case, img = _bsds_image_or_synthetic(ctx)
    kw = dict(repeat=max(3, a.repeat // 2), warmup=1, stage="segment", case=case, size=list(img.shape[:2]))
    out = [measure(lambda p=preset: segment(img, p).to_ucm2(),
                   impl=f"bottomup:{preset}" + (" (x1+x0.5, the default)" if preset == "quality" else ""),
                   **kw)
           for preset in PRESETS]
    out.append(measure(lambda: segment(img, "quality", multiscale=False).to_ucm2(),
                       impl="bottomup:quality multiscale=False (x1 only)", **kw))
    return out


@stage("segment_multiscale", "bottomup.segment_multiscale (quality at x1 and x0.5, aligned; = segment())",
       default=False)
def bench_segment_multiscale(ctx) -> list[dict]:
    from bottomup import segment_multiscale

    a = ctx.args
    case, img = _bsds_image_or_synthetic(ctx)
    return [measure(lambda: segment_multiscale(img).to_ucm2(), repeat=max(3, a.repeat // 2), warmup=1,
                    stage="segment_multiscale", case=case, size=list(img.shape[:2]),
                    impl="bottomup:quality x1+x0.5")]


@stage("superpixels", "superpixels: a cut of the hierarchy vs scikit-image SLIC and Felzenszwalb")
def bench_superpixels(ctx) -> list[dict]:
    from bottomup.hierarchy import ucm
    from bottomup.superpixels import felzenszwalb, slic, superpixels

    a = ctx.args
    case, img = _bsds_image_or_synthetic(ctx)
    pb = ctx.bsds_contours() if ctx.bsds_contours() is not None else ctx.synthetic(256)
    h = ucm(pb)
    kw = dict(repeat=a.repeat, warmup=a.warmup, stage="superpixels", case=case, size=list(img.shape[:2]))
    return [
        measure(lambda: superpixels(h, n_segments=300), impl="bottomup:hierarchy_cut", **kw),
        measure(lambda: ucm(pb).cut(n_regions=300), impl="bottomup:owt_ucm+cut", **kw),
        measure(lambda: slic(img, n_segments=300), impl="skimage:slic", **kw),
        measure(lambda: felzenszwalb(img, scale=200, sigma=0.8, min_size=50),
                impl="skimage:felzenszwalb", **kw),
    ]


@stage("learned_contours", "the learned contour network (deep) on the CPU, 1, 3 and 4 (default) scales; "
       "segment(contours='learned') end to end (learned and mean arcs), one and two scales", default=False)
def bench_learned(ctx) -> list[dict]:
    from bottomup.pipeline import segment
    from deep.contours import learned_contours

    a = ctx.args
    case, img = _bsds_image_or_synthetic(ctx)
    rep = max(3, a.repeat // 2)
    return [measure(lambda s=sc: learned_contours(img, scales=s), repeat=rep, warmup=1,
                    stage="learned_contours", case=case, size=list(img.shape[:2]), impl=f"deep:scales={sc}")
            for sc in ((1.0,), (0.5, 1.0, 1.5), (0.5, 1.0, 1.5, 2.0))] + [
        measure(lambda: segment(img, contours="learned"), repeat=rep, warmup=1,
                stage="learned_contours", case=case, size=list(img.shape[:2]),
                impl="bottomup:segment(contours='learned')"),
        measure(lambda: segment(img, contours="learned", arcs="mean"), repeat=rep, warmup=1,
                stage="learned_contours", case=case, size=list(img.shape[:2]),
                impl="bottomup:segment(contours='learned', arcs='mean')"),
        measure(lambda: segment(img, contours="learned", multiscale=True), repeat=rep, warmup=1,
                stage="learned_contours", case=case, size=list(img.shape[:2]),
                impl="bottomup:segment(contours='learned', multiscale=True)")]


@stage("learned_contours_cuda", "the learned contour network on CUDA (4 and 1 scales; image upload and "
       "result download included), next to the same calls on the CPU; nothing without a GPU",
       default=False)
def bench_learned_cuda(ctx) -> list[dict]:
    import torch

    from deep.contours import learned_contours

    if not torch.cuda.is_available():
        print("learned_contours_cuda: no CUDA device, skipped", file=sys.stderr)
        return []
    a = ctx.args
    case, img = _bsds_image_or_synthetic(ctx)
    rep = max(5, a.repeat)
    name = torch.cuda.get_device_name()
    return [measure(lambda s=sc, d=dev: learned_contours(img, scales=s, device=d), repeat=rep, warmup=2,
                    memory=False, stage="learned_contours_cuda", case=case, size=list(img.shape[:2]),
                    impl=f"deep:scales={sc}:{dev}" + (f" ({name})" if dev == "cuda" else ""))
            for dev in ("cuda", "cpu") for sc in ((0.5, 1.0, 1.5, 2.0), (1.0,))]


@stage(
    "owt_ucm", "OWT + UCM from a contour map (bottomup.hierarchy.ucm) vs higra mean_pb_hierarchy"
)
def bench_owt_ucm(ctx) -> list[dict]:
    from bottomup.hierarchy import ucm

    a = ctx.args
    out = []
    try:
        import higra as hg
    except ImportError:  # pragma: no cover
        hg = None
    for case, pb in _contour_cases(ctx):
        ours = measure(
            lambda pb=pb: ucm(pb),
            repeat=a.repeat,
            warmup=a.warmup,
            stage="owt_ucm",
            case=case,
            size=list(pb.shape),
            impl="bottomup",
        )
        ours["n_leaves"] = ucm(pb).n_leaves
        out.append(ours)
        if hg is not None:
            graph = hg.get_4_adjacency_graph(pb.shape)

            def run_higra(pb=pb, graph=graph):
                w = hg.weight_graph(graph, pb, hg.WeightFunction.max)
                return hg.mean_pb_hierarchy(graph, w, shape=pb.shape)

            ref = measure(
                run_higra,
                repeat=a.repeat,
                warmup=a.warmup,
                stage="owt_ucm",
                case=case,
                size=list(pb.shape),
                impl="higra",
            )
            ref["n_leaves"] = int(run_higra()[0].num_leaves())
            out.append(ref)
            ours["ratio_vs_higra"] = ours["median_s"] / ref["median_s"]
            ours["cpu_ratio_vs_higra"] = ours["cpu_median_s"] / ref["cpu_median_s"]
    return out


@stage("owt_oriented", "oriented watershed with an 8-orientation stack (bottomup.owt)")
def bench_owt_oriented(ctx) -> list[dict]:
    from bottomup.owt import oriented_watershed

    a = ctx.args
    out = []
    for case, pb in _contour_cases(ctx)[:3]:
        rng = np.random.default_rng(0)
        oriented = np.ascontiguousarray(pb[None] * rng.random((8, 1, 1)))
        out.append(
            measure(
                lambda pb=pb, o=oriented: oriented_watershed(pb, o),
                repeat=a.repeat,
                warmup=a.warmup,
                stage="owt_oriented",
                case=case,
                size=list(pb.shape),
                impl="bottomup",
            )
        )
    return out


@stage("ucm2_io", "Hierarchy.to_ucm2 and Hierarchy.from_ucm2 on a BSDS-size hierarchy")
def bench_ucm2_io(ctx) -> list[dict]:
    from bottomup.hierarchy import Hierarchy, ucm

    a = ctx.args
    out = []
    for case, pb in _contour_cases(ctx)[:2]:
        h = ucm(pb)
        u = h.to_ucm2()
        out.append(
            measure(
                h.to_ucm2,
                repeat=a.repeat,
                warmup=a.warmup,
                stage="to_ucm2",
                case=case,
                size=list(pb.shape),
                impl="bottomup",
            )
        )
        out.append(
            measure(
                lambda u=u: Hierarchy.from_ucm2(u),
                repeat=a.repeat,
                warmup=a.warmup,
                stage="from_ucm2",
                case=case,
                size=list(pb.shape),
                impl="bottomup",
            )
        )
    return out


@stage("interactive", "bottomup.interactive.segment with two scribbles on a BSDS-size hierarchy")
def bench_interactive(ctx) -> list[dict]:
    from bottomup.hierarchy import ucm
    from bottomup.interactive import segment

    a = ctx.args
    out = []
    for case, pb in _contour_cases(ctx)[:1]:
        h = ucm(pb)
        seeds = np.zeros(pb.shape, np.int64)
        seeds[5, 5:50] = 1
        seeds[-5, -50:-5] = 2
        out.append(
            measure(
                lambda h=h, s=seeds: segment(h, s),
                repeat=a.repeat,
                warmup=a.warmup,
                stage="interactive",
                case=case,
                size=list(pb.shape),
                impl="bottomup",
            )
        )
    return out


@stage(
    "owt_ucm_10mp",
    "OWT + UCM on a 10-megapixel map (3163 x 3163): time and peak memory",
    default=False,
)
def bench_owt_ucm_10mp(ctx) -> list[dict]:
    import scipy.ndimage as ndi

    from bottomup.hierarchy import ucm

    rng = np.random.default_rng(0)
    pb = ndi.gaussian_filter(rng.random((3163, 3163)), 2.0)
    pb -= pb.min()
    pb /= pb.max()
    return [
        measure(
            lambda: ucm(pb),
            repeat=1,
            warmup=0,
            stage="owt_ucm",
            case="synthetic_10mp",
            size=list(pb.shape),
            impl="bottomup",
        )
    ]


# ------------------------------------------------------------------------------------------------


def metadata() -> dict:
    import numba

    def version(mod):
        try:
            m = __import__(mod)
            return getattr(m, "__version__", "unknown")
        except ImportError:
            return None

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:  # pragma: no cover
        commit = None
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:  # pragma: no cover
        pass
    return {
        "git_commit": commit,
        "python": sys.version.split()[0],
        "numpy": version("numpy"),
        "numba": version("numba"),
        "scikit-image": version("skimage"),
        "higra": "installed" if version("higra") is not None else None,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "numba_cache": os.environ.get("NUMBA_CACHE_DIR", "default"),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stage", action="append", help="stage to run (repeatable; default: all)")
    p.add_argument("--list", action="store_true", help="list the registered stages and exit")
    p.add_argument("--repeat", type=int, default=7, help="timed calls per case (default 7)")
    p.add_argument(
        "--warmup", type=int, default=2, help="untimed calls after the first (default 2)"
    )
    p.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[64, 256, 1024],
        help="synthetic square sizes (default 64 256 1024)",
    )
    p.add_argument("--no-sweep", action="store_true", help="skip the synthetic sweep")
    p.add_argument(
        "--warm-cache",
        action="store_true",
        help="keep the numba cache (first call = cache load, not compilation)",
    )
    p.add_argument("--json", metavar="OUT", help="write {metadata, results} to this file")
    args = p.parse_args(argv)
    if args.list:
        for name, (_, h) in STAGES.items():
            print(f"{name:16s} {h}{' (only with --stage)' if name in NOT_DEFAULT else ''}")
        return 0
    if not args.warm_cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-numba-")
    names = args.stage or [n for n in STAGES if n not in NOT_DEFAULT]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        p.error(f"unknown stage(s) {unknown}; known: {list(STAGES)}")
    ctx = Context(args)
    results = []
    for name in names:
        for r in STAGES[name][0](ctx):
            results.append(r)
            extra = (
                f"  ratio vs higra {r['ratio_vs_higra']:.2f} (cpu {r['cpu_ratio_vs_higra']:.2f})"
                if "ratio_vs_higra" in r
                else ""
            )
            mem = r.get("peak_mem_mb")
            print(
                f"{r['stage']:13s} {r['impl']:9s} {r['case']:34s} {str(tuple(r['size'])):12s} "
                f"median {r['median_s'] * 1e3:8.1f} ms (IQR {r['iqr_s'] * 1e3:6.1f}, "
                f"cpu {r['cpu_median_s'] * 1e3:7.1f}) "
                f"first {r['first_call_s']:6.2f} s  mem {mem if mem is None else round(mem, 1)} MiB"
                f"{extra}",
                flush=True,
            )
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"metadata": metadata(), "results": results}, indent=2))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
