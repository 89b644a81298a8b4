"""Speed and peak memory of the ``deep`` architectures and ops on a BSDS-sized image (321x481).

Methodology (kornia ``benchmarks/README.md``): each case runs in its own subprocess (so peak memory
is its own), builds the model, warms up, then times ``--repeats`` calls and reports the median and
inter-quartile range, synchronising the GPU inside the timed region. Forward is timed under
``torch.no_grad()`` in eval mode; forward+backward in train mode, with a mean-of-output loss.
Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the process's peak resident set
(``ru_maxrss``) and its growth over the resident set before the first forward.

Usage::

    python bench/deep_speed.py --json OUT.json [--device cpu|cuda] [--repeats 5]
        [--cases fcn8s,deeplabv3plus,...] [--full-width] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = (321, 481)
CASES = (
    "fcn32s",
    "fcn8s",
    "deeplabv3plus",
    "unet",
    "deconvnet",
    "hypercolumns",
    "roi_align",
    "roi_pool",
)


def _build(case: str, full_width: bool):
    """Return (callable(x) -> Tensor, module or None, description)."""
    import torch

    import deep

    if case in ("fcn32s", "fcn8s"):
        m = deep.FCN(deep.efficientnet_lite0(pretrained=False), 21, case[3:])
        return m, m, f"FCN-{case[3:]} on EfficientNet-Lite0, 21 classes"
    if case == "deeplabv3plus":
        m = deep.deeplabv3plus_efficientnet_lite0(21, output_stride=16, pretrained=False)
        return m, m, "DeepLabv3+ on EfficientNet-Lite0, output stride 16, 21 classes"
    if case == "unet":
        base = 64 if full_width else 32
        m = deep.UNet(3, 21, base_channels=base, depth=4)
        return m, m, f"U-Net depth 4, base {base} channels, BatchNorm"
    if case == "deconvnet":
        ch = (64, 128, 256, 512, 512) if full_width else (32, 64, 128, 256, 256)
        m = deep.DeconvNet(3, 21, channels=ch, convs_per_stage=(2, 2, 3, 3, 3))
        return m, m, f"DeconvNet VGG-16 layout, channels {ch}"
    if case == "hypercolumns":
        m = deep.Hypercolumns(deep.efficientnet_lite0(pretrained=False))
        return m, m, "Hypercolumns (strides 4-32 of EfficientNet-Lite0, 496-D) at full resolution"
    if case in ("roi_align", "roi_pool"):
        g = torch.Generator().manual_seed(0)
        k = 300
        xy = torch.rand(k, 2, generator=g) * torch.tensor([SIZE[1], SIZE[0]]) * 0.8
        wh = torch.rand(k, 2, generator=g) * 150 + 8
        boxes = torch.cat([xy, xy + wh], dim=1)
        feat_shape = (1, 112, (SIZE[0] + 15) // 16, (SIZE[1] + 15) // 16)
        op = deep.roi_align if case == "roi_align" else deep.roi_pool
        kw = {"sampling_ratio": 2, "aligned": True} if case == "roi_align" else {}

        class _Op(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.feat = torch.nn.Parameter(torch.randn(feat_shape, generator=g))
                self.register_buffer("boxes", boxes)

            def forward(self, x):
                return op(self.feat + 0 * x.mean(), [self.boxes], 7, 1 / 16, **kw)

        m = _Op()
        return m, m, f"{case}, {k} boxes, 7x7 bins, on a (1, 112, 21, 31) stride-16 map"
    raise ValueError(f"unknown case {case!r}; choose from {CASES}")


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover - non-Linux
        return float("nan")


def _worker(case: str, device: str, repeats: int, warmup: int, full_width: bool) -> dict:
    import statistics

    import torch

    torch.manual_seed(0)
    dev = torch.device(device)
    fn, module, desc = _build(case, full_width)
    module.to(dev)
    x = torch.rand((1, 3) + SIZE, generator=torch.Generator().manual_seed(1)).to(dev)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(step):
        for _ in range(warmup):
            step()
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t0)
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
        return {"median_s": statistics.median(times), "iqr_s": q[2] - q[0], "times_s": times}

    def forward():
        with torch.no_grad():
            fn(x)

    def forward_backward():
        module.zero_grad(set_to_none=True)
        fn(x).float().mean().backward()

    rss0 = _rss_mb()
    out: dict = {
        "torch_threads": torch.get_num_threads(),
        "case": case,
        "description": desc,
        "input_size": list(SIZE),
        "device": device,
        "params": sum(p.numel() for p in module.parameters()),
    }
    for name, step, train in (
        ("forward", forward, False),
        ("forward_backward", forward_backward, True),
    ):
        module.train(train)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        res = timed(step)
        if cuda:
            res["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out[name] = res
    module.eval()
    with torch.no_grad():
        out["output_shape"] = list(fn(x).shape)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out["process_peak_rss_mb"] = peak
    out["rss_before_mb"] = rss0
    out["peak_rss_growth_mb"] = peak - rss0
    return out


def _metadata(device: str) -> dict:
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:  # pragma: no cover
        commit = ""
    meta = {
        "git_commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name(0)
        meta["cuda"] = torch.version.cuda
    return meta


def _write(path: Path | None, meta: dict, results: list[dict]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"metadata": meta, "results": results}, indent=2))
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--json", type=Path, help="write {metadata, results} here")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list from {CASES}")
    p.add_argument(
        "--full-width",
        action="store_true",
        help="paper widths for U-Net (64) and DeconvNet (VGG-16); default halves them",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default: torch's own choice)"
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    if args.worker:
        print(
            json.dumps(
                _worker(args.worker, args.device, args.repeats, args.warmup, args.full_width)
            )
        )
        return 0

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda requested but CUDA is not available", file=sys.stderr)
        return 2
    results: list[dict] = []
    meta = _metadata(args.device)
    env = dict(os.environ)  # the workers import the installed package, as this script does
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            case,
            "--device",
            args.device,
            "--repeats",
            str(args.repeats),
            "--warmup",
            str(args.warmup),
        ]
        if args.full_width:
            cmd.append("--full-width")
        if args.threads > 0:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            results.append({"case": case, "error": proc.stderr.strip().splitlines()[-1:]})
            _write(args.json, meta, results)
            print(f"{case:14s} FAILED: {proc.stderr.strip()[-300:]}", file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        _write(args.json, meta, results)  # after every case, so a killed run keeps what it did
        mem = (
            f"peak {r['forward_backward']['peak_memory_mb']:.0f} MB"
            if "peak_memory_mb" in r["forward_backward"]
            else f"peak RSS {r['process_peak_rss_mb']:.0f} MB (+{r['peak_rss_growth_mb']:.0f})"
        )
        print(
            f"{case:14s} fwd {r['forward']['median_s'] * 1e3:8.1f} ms   fwd+bwd "
            f"{r['forward_backward']['median_s'] * 1e3:8.1f} ms   {mem}",
            flush=True,
        )
    _write(args.json, meta, results)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
