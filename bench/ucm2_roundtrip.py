"""Check Hierarchy <-> ucm2 on every BSDS val ucm2: exact round trip and BSDS-rule cuts.

    python bench/ucm2_roundtrip.py [--limit N] [--thresholds K] [--json OUT]

For each released ``ucm2`` (BSDS500/ucm2/val, 100 files): ``Hierarchy.from_ucm2(u).to_ucm2()``
must equal ``u`` exactly, and for K thresholds (quantiles of the distinct values, plus 0 and the
maximum) ``cut(t)`` must be the same partition as ``scipy.ndimage.label(u <= t, 8-connected)``
read at ``[1::2, 1::2]`` (MATLAB ``bwlabel``, as the BSDS benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]).astype(np.int64), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data", default=os.environ.get("BOTTOMUP_DATA"), help="folder holding bsds500/"
    )
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--thresholds", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if not args.data or not (Path(args.data) / "bsds500").is_dir():
        p.error("BSDS500 not found: pass --data or set BOTTOMUP_DATA")
    from bottomup.hierarchy import Hierarchy
    from bottomup.io import read_ucm2

    files = sorted((Path(args.data) / "bsds500" / "ucm2" / "val").glob("*.mat"))[: args.limit]
    rows = []
    for f in files:
        u = read_ucm2(f)
        t0 = time.perf_counter()
        h = Hierarchy.from_ucm2(u)
        t_from = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = h.to_ucm2()
        t_to = time.perf_counter() - t0
        lev = np.unique(u)
        ts = sorted({0.0, float(lev.max()), *np.quantile(lev, np.linspace(0, 1, args.thresholds))})
        bad = [
            t
            for t in ts
            if not same_partition(h.cut(t), ndi.label(u <= t, np.ones((3, 3)))[0][1::2, 1::2])
        ]
        rows.append(
            {
                "id": f.stem,
                "round_trip": bool(np.array_equal(back, u)),
                "n_thresholds": len(ts),
                "bad_thresholds": bad,
                "n_leaves": h.n_leaves,
                "from_ucm2_s": t_from,
                "to_ucm2_s": t_to,
            }
        )
    n_rt = sum(r["round_trip"] for r in rows)
    n_cut = sum(not r["bad_thresholds"] for r in rows)
    print(
        f"{len(rows)} ucm2 files: exact round trip {n_rt}/{len(rows)}; all cuts equal to "
        f"bwlabel(u <= t) {n_cut}/{len(rows)} ({sum(r['n_thresholds'] for r in rows)} cuts); "
        f"median from_ucm2 {np.median([r['from_ucm2_s'] for r in rows]) * 1e3:.1f} ms, "
        f"to_ucm2 {np.median([r['to_ucm2_s'] for r in rows]) * 1e3:.1f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"results": rows}, indent=2))
    return 0 if n_rt == n_cut == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
