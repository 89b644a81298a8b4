"""Our OWT-UCM against higra's ``mean_pb_hierarchy`` on the same contour maps (BSDS500 val).

    python bench/hierarchy_vs_higra.py --out out/ucm_vs_higra [--contours ucm2|sobel] [--limit N]

For every BSDS val image, one contour map ``pb`` (H, W) in [0, 1]:

* ``ucm2`` (default): the boundaries of the released gPb-owt-ucm, ``ucm2[2::2, 2::2]``;
* ``sobel``: the Sobel gradient magnitude of the Lab image, divided by its maximum.

Both methods get the same map: ours through :func:`bottomup.hierarchy.ucm` (no orientation, no
sigmoid), higra through ``mean_pb_hierarchy`` on the 4-adjacency graph with edge weights
``max(pb[p], pb[q])`` (the weights our watershed uses), its saliency written on the BSDS
double-size grid (faces between pixels, vertices = max of their neighbours). The script writes
``OUT/ours/<id>.mat`` and ``OUT/higra/<id>.mat`` (variable ``ucm2``, readable by the official
benchmark and ``bench/bsds.py``), skips files that exist (``--overwrite`` to redo), and prints and
stores (``OUT/summary.json``) the per-image agreement of the two ucm2 (identical, fraction of
differing elements, mean absolute difference) and the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def higra_ucm2(pb: np.ndarray) -> np.ndarray:
    """ucm2 (BSDS layout) of higra's mean_pb_hierarchy on max-of-pixels edge weights."""
    import higra as hg

    h, w = pb.shape
    graph = hg.get_4_adjacency_graph((h, w))
    weights = hg.weight_graph(graph, pb, hg.WeightFunction.max)
    u = np.zeros((2 * h + 1, 2 * w + 1))
    if len(np.unique(hg.labelisation_watershed(graph, weights))) == 1:
        return u  # higra raises on a single region
    tree, alt = hg.mean_pb_hierarchy(graph, weights, shape=(h, w))
    s, t = graph.edge_list()
    si, sj = np.divmod(np.asarray(s), w)
    ti, tj = np.divmod(np.asarray(t), w)
    u[si + ti + 1, sj + tj + 1] = hg.saliency(tree, alt)
    p = np.pad(u, 1)
    v = np.maximum.reduce([p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]])
    u[::2, ::2] = v[::2, ::2]
    return u


def contour_map(kind: str, bsds: Path, iid: str) -> np.ndarray:
    from bottomup.io import read_image, read_ucm2

    if kind == "ucm2":
        return read_ucm2(bsds / "ucm2" / "val" / f"{iid}.mat")[2::2, 2::2].copy()
    import scipy.ndimage as ndi
    from skimage.color import rgb2lab

    img = read_image(bsds / "data" / "images" / "val" / f"{iid}.jpg")
    lab = rgb2lab(img) / np.array([100.0, 255.0, 255.0])
    mag = np.sqrt(sum(ndi.sobel(lab[..., c], a) ** 2 for c in range(3) for a in (0, 1)))
    return mag / mag.max()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", required=True, help="output folder (ours/ and higra/ are created)")
    p.add_argument(
        "--contours",
        choices=["ucm2", "sobel"],
        default="ucm2",
        help="contour map fed to both methods (default: the released ucm2's boundaries)",
    )
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--overwrite", action="store_true", help="recompute existing files")
    p.add_argument(
        "--data",
        default=os.environ.get("BOTTOMUP_DATA"),
        help="data folder holding bsds500/ (default $BOTTOMUP_DATA)",
    )
    args = p.parse_args(argv)
    if not args.data or not (Path(args.data) / "bsds500").is_dir():
        p.error(
            "BSDS500 not found: pass --data or set BOTTOMUP_DATA to the folder holding bsds500/"
        )
    try:
        import higra  # noqa: F401
    except ImportError:
        p.error("higra is not installed (pip install higra)")

    from bottomup.hierarchy import ucm
    from bottomup.io import read_ucm2, write_ucm2

    bsds = Path(args.data) / "bsds500"
    ids = sorted(f.stem for f in (bsds / "ucm2" / "val").glob("*.mat"))[: args.limit]
    out = Path(args.out)
    (out / "ours").mkdir(parents=True, exist_ok=True)
    (out / "higra").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, iid in enumerate(ids):
        f_ours, f_higra = out / "ours" / f"{iid}.mat", out / "higra" / f"{iid}.mat"
        t_ours = t_higra = None
        if args.overwrite or not (f_ours.exists() and f_higra.exists()):
            pb = contour_map(args.contours, bsds, iid)
            t0 = time.perf_counter()
            u_ours = ucm(pb).to_ucm2()
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            u_higra = higra_ucm2(pb)
            t_higra = time.perf_counter() - t0
            write_ucm2(f_ours, u_ours)
            write_ucm2(f_higra, u_higra)
        else:
            u_ours, u_higra = read_ucm2(f_ours), read_ucm2(f_higra)
        diff = np.abs(u_ours - u_higra)
        row = {
            "id": iid,
            "identical": bool(np.allclose(u_ours, u_higra, rtol=1e-6, atol=1e-7)),
            "frac_differing": float((diff > 1e-6).mean()),
            "mean_abs_diff": float(diff.mean()),
            "t_ours_s": t_ours,
            "t_higra_s": t_higra,
        }
        rows.append(row)
        print(
            f"[{k + 1:3d}/{len(ids)}] {iid}: identical={row['identical']} "
            f"differing={row['frac_differing']:.5f} mean|d|={row['mean_abs_diff']:.2e}",
            flush=True,
        )
    summary = {
        "contours": args.contours,
        "n_images": len(rows),
        "n_identical": sum(r["identical"] for r in rows),
        "mean_frac_differing": float(np.mean([r["frac_differing"] for r in rows]))
        if rows
        else None,
        "mean_abs_diff": float(np.mean([r["mean_abs_diff"] for r in rows])) if rows else None,
        "images": rows,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"{summary['n_identical']}/{summary['n_images']} identical ucm2; mean fraction of "
        f"differing elements {summary['mean_frac_differing']}; wrote {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
