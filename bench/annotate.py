"""Speed of ``bottomup annotate``: the segment request end to end over HTTP, and the hierarchy time.

    python bench/annotate.py --json out/annotate.json                 # 10 BSDS val images + 10 MP
    python bench/annotate.py --n-images 3 --contours gpb --no-big

What is measured (BOTTOMUP_DATA must hold bsds500/):

* ``hierarchy``: for each image, the wall time from the first ``GET /api/images/{name}/ucm2.npz``
  to its 200 (the background job: read the image, ``default_hierarchy``, write the cached ucm2),
  polled every 20 ms, one image at a time. The first image also pays the worker process's start
  (imports, numba cache loading); it is reported apart and left out of the median.
* ``segment``: ``POST /api/images/{name}/segment`` with a scribbles PNG, timed from sending the
  body to having read the labels PNG, on one kept-alive connection (as a browser does), once the
  hierarchy is cached. The first request of each image loads the ``.npz`` into the server's memory
  and is reported apart (``first_ms``); then ``--repeat`` timed requests. The scribbles are one
  short stroke (radius 3) in each of the 5 largest regions of the first human annotation, so each
  request has a realistic number of labels. The client's PNG encoding of the scribbles (done by
  the page before sending) is timed apart.
* ``big``: the same for an image of about 10 megapixels (a BSDS image resized to 3872x2592). Its
  hierarchy is, by default, the BSDS image's own with its leaves resized by nearest neighbour
  (``--big-hierarchy upscaled``: a valid hierarchy at full size, cheap to build, so the request
  time is measured without computing gPb at 10 MP); ``--big-hierarchy default`` computes it.

The server is the real one (uvicorn on 127.0.0.1, a free port, hierarchies in a worker process).
Writes ``{"metadata": ..., "results": [...]}`` with ``--json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import bottomup
from bottomup.annotate import create_app
from bottomup.hierarchy import Hierarchy
from bottomup.interactive import segment

BIG = (2592, 3872)  # H, W: 10.04 megapixels


def _metadata() -> dict:
    import platform

    return {"bottomup": bottomup.__version__, "python": sys.version.split()[0], "numpy": np.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()}


def _png(arr) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def scribbles_from_gt(gt_seg: np.ndarray, n_labels: int = 5, radius: int = 3, length: int = 40) -> np.ndarray:
    """One horizontal stroke, inside each of the ``n_labels`` largest regions of a ground truth."""
    import scipy.ndimage as ndi

    seeds = np.zeros(gt_seg.shape, np.uint8)
    ids, counts = np.unique(gt_seg, return_counts=True)
    for k, rid in enumerate(ids[np.argsort(-counts)][:n_labels], start=1):
        inside = ndi.binary_erosion(gt_seg == rid, iterations=radius)
        if not inside.any():
            inside = gt_seg == rid
        dist = ndi.distance_transform_edt(inside)
        r, c = np.unravel_index(np.argmax(dist), dist.shape)
        c0, c1 = c, c
        while c0 > 0 and inside[r, c0 - 1] and c - c0 < length // 2:
            c0 -= 1
        while c1 + 1 < inside.shape[1] and inside[r, c1 + 1] and c1 - c < length // 2:
            c1 += 1
        rr, cc = np.mgrid[: seeds.shape[0], : seeds.shape[1]]
        near = (np.abs(rr - r) <= radius) & (cc >= c0 - radius) & (cc <= c1 + radius)
        seeds[near & (gt_seg == rid)] = k
    return seeds


class Server:
    """The real app under uvicorn in a thread, on 127.0.0.1 and a free port."""

    def __init__(self, folder, **kw):
        import uvicorn

        self.app = create_app(folder, **kw)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def close(self):
        self.server.should_exit = True
        self.thread.join(30)


def request(conn, method, path, body=None):
    conn.request(method, path, body=body, headers={"Content-Type": "image/png"} if body else {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def wait_hierarchy(server: Server, name: str) -> float:
    conn = server.connection()
    t0 = time.perf_counter()
    while True:
        status, body = request(conn, "GET", f"/api/images/{name}/ucm2.npz")
        if status == 200:
            return time.perf_counter() - t0
        if status != 202:
            raise RuntimeError(f"GET ucm2.npz of {name}: {status} {body[:300]!r}")
        time.sleep(0.02)


def time_segment(server: Server, name: str, seeds: np.ndarray, repeat: int) -> dict:
    import cv2

    t0 = time.perf_counter()
    body = _png(seeds)
    encode_ms = 1e3 * (time.perf_counter() - t0)
    conn = server.connection()
    times = []
    labels = None
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        status, out = request(conn, "POST", f"/api/images/{name}/segment", body)
        times.append(1e3 * (time.perf_counter() - t0))
        if status != 200:
            raise RuntimeError(f"segment {name}: {status} {out[:300]!r}")
        labels = out
    conn.close()
    lab = cv2.imdecode(np.frombuffer(labels, np.uint8), cv2.IMREAD_UNCHANGED)
    ws = server.app.state.workspace
    hierarchy = Hierarchy.from_ucm2(bottomup.read_ucm2(ws.cache_path(name)))
    ok = bool(np.array_equal(lab, segment(hierarchy, seeds)))
    return {"first_ms": times[0], "times_ms": times[1:], "encode_ms": encode_ms,
            "png_bytes": len(body), "equal_to_segment": ok, "n_labels": int(seeds.max())}


def big_image(folder: Path, src_name: str, ws, how: str, src_hierarchy) -> tuple[str, float]:
    """Write the 10 MP image and, for ``how="upscaled"``, its cache; returns (name, seconds)."""
    import cv2

    from bottomup.io import write_ucm2

    img = cv2.imread(str(folder / src_name))
    big = cv2.resize(img, (BIG[1], BIG[0]), interpolation=cv2.INTER_CUBIC)
    name = "big_10mp.png"
    cv2.imwrite(str(folder / name), big)
    if how != "upscaled":
        return name, float("nan")
    t0 = time.perf_counter()
    leaves = cv2.resize(src_hierarchy.leaf_labels.astype(np.int32), (BIG[1], BIG[0]),
                        interpolation=cv2.INTER_NEAREST)
    h = Hierarchy(src_hierarchy.parents, src_hierarchy.altitudes, leaves)
    write_ucm2(ws.cache_path(name), h.to_ucm2())
    return name, time.perf_counter() - t0


def summary(values) -> dict:
    v = np.asarray(values, float)
    if v.size == 0:
        return {}
    return {"median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
            "iqr": float(np.subtract(*np.percentile(v, [75, 25]))), "min": float(v.min()),
            "max": float(v.max()), "n": int(v.size)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("BOTTOMUP_DATA"), help="folder holding bsds500/")
    ap.add_argument("--n-images", type=int, default=10, help="BSDS val images (default 10)")
    ap.add_argument("--repeat", type=int, default=30, help="timed segment requests per image (default 30)")
    ap.add_argument("--contours", choices=("auto", "learned", "gpb"), default="auto",
                    help="contours of the hierarchies (default auto: learned when torch is installed)")
    ap.add_argument("--no-big", action="store_true", help="skip the 10-megapixel image")
    ap.add_argument("--big-hierarchy", choices=("upscaled", "default"), default="upscaled")
    ap.add_argument("--big-repeat", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if not args.data or not os.path.isdir(os.path.join(args.data, "bsds500")):
        ap.error("set BOTTOMUP_DATA (or --data) to the folder holding bsds500/")
    src = Path(args.data) / "bsds500" / "data" / "images" / "val"
    gt_dir = Path(args.data) / "bsds500" / "data" / "groundTruth" / "val"
    names = sorted(p.name for p in src.glob("*.jpg"))[: args.n_images]

    tmp = Path(tempfile.mkdtemp(prefix="bench_annotate_"))
    for n in names:
        shutil.copy(src / n, tmp / n)
    server = Server(tmp, contours=args.contours, workers="process")
    ws = server.app.state.workspace
    results = []
    try:
        print(f"hierarchies from {ws.tag} contours, {len(names)} BSDS val images, folder {tmp}", flush=True)
        for n in names:
            sec = wait_hierarchy(server, n)
            results.append({"case": "hierarchy", "image": n, "contours": ws.tag, "seconds": sec})
            print(f"  hierarchy {n}: {sec:.2f} s", flush=True)
        for n in names:
            gt = bottomup.read_bsds_gt(gt_dir / (Path(n).stem + ".mat"))
            seeds = scribbles_from_gt(gt.segmentations[0])
            h, w = seeds.shape
            r = time_segment(server, n, seeds, args.repeat)
            results.append({"case": "segment", "image": n, "shape": [h, w], **r})
            print(f"  segment {n} ({w}x{h}, {r['n_labels']} labels): median "
                  f"{np.median(r['times_ms']):.1f} ms, first {r['first_ms']:.1f} ms, "
                  f"equal to segment(): {r['equal_to_segment']}", flush=True)
        if not args.no_big:
            src_h = None
            if args.big_hierarchy == "upscaled":
                src_h = Hierarchy.from_ucm2(bottomup.read_ucm2(ws.cache_path(names[0])))
            t0 = time.perf_counter()
            name, build = big_image(tmp, names[0], ws, args.big_hierarchy, src_h)
            sec = wait_hierarchy(server, name) if args.big_hierarchy == "default" else build
            results.append({"case": "big_hierarchy", "image": name, "shape": list(BIG),
                            "how": args.big_hierarchy, "seconds": sec,
                            "wall_s": time.perf_counter() - t0})
            gt = bottomup.read_bsds_gt(gt_dir / (Path(names[0]).stem + ".mat"))
            import cv2

            small = scribbles_from_gt(gt.segmentations[0])
            seeds = cv2.resize(small, (BIG[1], BIG[0]), interpolation=cv2.INTER_NEAREST)
            r = time_segment(server, name, seeds, args.big_repeat)
            results.append({"case": "big_segment", "image": name, "shape": list(BIG), **r})
            print(f"  10 MP ({BIG[1]}x{BIG[0]}, hierarchy {args.big_hierarchy}: {sec:.1f} s): segment median "
                  f"{np.median(r['times_ms']):.0f} ms, first {r['first_ms']:.0f} ms, "
                  f"client PNG encode {r['encode_ms']:.0f} ms, equal: {r['equal_to_segment']}", flush=True)
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)

    hier = [r["seconds"] for r in results if r["case"] == "hierarchy"]
    seg = [t for r in results if r["case"] == "segment" for t in r["times_ms"]]
    per_image = [float(np.median(r["times_ms"])) for r in results if r["case"] == "segment"]
    agg = {
        "case": "summary",
        "contours": ws.tag,
        "hierarchy_s_first": hier[0] if hier else None,
        "hierarchy_s": summary(hier[1:]),
        "segment_ms": summary(seg),
        "segment_ms_per_image_median": summary(per_image),
        "segment_target_median_ms": 50,
        "all_equal_to_segment": all(r.get("equal_to_segment", True) for r in results),
    }
    results.append(agg)
    print(json.dumps(agg, indent=1))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"metadata": _metadata() | {"repeat": args.repeat}, "results": results}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
