"""``bottomup demo``: the whole engine on a bundled image, in one figure.

The image is scikit-image's ``coffee`` (R. Michetti, CC0), which ships inside the scikit-image
wheel, so the demo needs no download.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

__all__ = ["demo", "register"]


def _demo_image(max_side: int = 320) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    img = data.coffee()
    scale = max_side / max(img.shape[:2])
    h, w = round(img.shape[0] * scale), round(img.shape[1] * scale)
    return np.clip(resize(img / 255.0, (h, w), anti_aliasing=True), 0, 1)


#: Entry-point group of extra demo panels (``deep`` adds the deep heads): each is a function
#: ``panel(times) -> (title, rgb image in [0, 1], None)`` that records its seconds in ``times``.
PANELS_GROUP = "bottomup.demo"


def _extra_panels(times) -> list:
    from importlib.metadata import entry_points

    return [ep.load()(times) for ep in sorted(entry_points(group=PANELS_GROUP), key=lambda e: e.name)]


def demo(out_dir, *, preset: str = "fast", learned: bool | None = None) -> dict:
    """Run contours, hierarchy, cuts, superpixels (and the learned contours when torch is there).

    Parameters
    ----------
    out_dir : path-like
        Folder for ``demo.png`` and ``demo_ucm2.mat``.
    preset : {"fast", "balanced", "quality", "medium"}
        gPb preset of the figure's hierarchy.
    learned : bool, optional
        Also show the learned contours (default: when torch is importable).

    Returns
    -------
    info : dict
        Paths written and per-step seconds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries, mark_boundaries

    from bottomup import io, superpixels
    from bottomup.contours import GPb, get_source
    from bottomup.hierarchy import ucm
    from bottomup.pipeline import segment

    os.makedirs(out_dir, exist_ok=True)
    img = _demo_image()
    times = {}
    t = time.perf_counter()
    gpb_source = GPb(preset, multiscale=False)
    pb, oriented = gpb_source(img)
    times["contours"] = time.perf_counter() - t
    t = time.perf_counter()
    h = ucm(pb, oriented, normalize=True, descent_first=True)  # = segment(img, gpb_source)
    u2 = h.to_ucm2()
    times["owt_ucm"] = time.perf_counter() - t
    io.write_ucm2(os.path.join(out_dir, "demo_ucm2.mat"), u2)
    panels = [("image", img, None), ("gPb contours", pb, "gray_r"),
              ("ultrametric contour map", u2[2::2, 2::2], "gray_r")]
    for n in (4, 12, 40):
        lab = h.cut(n_regions=n)
        mean = np.stack([np.bincount(lab.ravel(), img[..., c].ravel()) / np.bincount(lab.ravel())
                         for c in range(3)], -1)[lab]
        drawn = np.clip(np.where(find_boundaries(lab)[..., None], 0, mean), 0, 1)
        panels.append((f"cut: {n} regions", drawn, None))
    sp = superpixels(h, n_segments=150)
    panels.append(("150 superpixels (a cut)", mark_boundaries(img, sp, color=(1, 0.2, 0.2)), None))
    from bottomup.mcg import proposals

    t = time.perf_counter()
    cands = proposals(img, n=1000, method="scg")
    times["scg_proposals"] = time.perf_counter() - t
    shown = img.copy()
    colors = [(1, 0.2, 0.2), (0.2, 1, 0.2), (0.3, 0.5, 1), (1, 1, 0.2), (1, 0.3, 1)]
    masks = cands.masks(np.arange(min(5, len(cands.scores))))
    for k in range(len(masks) - 1, -1, -1):
        shown = mark_boundaries(shown, masks[k].astype(np.int32), color=colors[k], mode="thick")
    key = ", ".join(["red", "green", "blue", "yellow", "magenta"][: len(masks)])
    panels.append((f"top {len(masks)} of {len(cands.scores)} SCG proposals\nrank 1-{len(masks)}: {key}",
                   np.clip(shown, 0, 1), None))
    learned_source = None
    if learned is not False:
        try:  # registered by `deep` (needs torch)
            learned_source = get_source("learned")
        except (ImportError, ValueError):
            if learned:
                raise
    if learned_source is not None:
        t = time.perf_counter()
        lpb, lori = learned_source(img)
        times["learned_contours"] = time.perf_counter() - t
        panels.append(("learned contours (deep)", lpb, "gray_r"))
        # = segment(img, contours="learned"), reusing the contours computed above
        lh = segment(img, learned_source.with_policy(fn=lambda _: (lpb, lori)))
        drawn = mark_boundaries(img, lh.cut(n_regions=12), color=(1, 1, 0))
        panels.append(("learned UCM: 12 regions", drawn, None))
        panels += _extra_panels(times)
    n = len(panels)
    cols = 4
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.0 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, arr, cmap) in zip(axes.ravel(), panels, strict=False):
        ax.imshow(arr, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, "demo.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {"figure": path, "ucm2": os.path.join(out_dir, "demo_ucm2.mat"), "seconds": times}


def _run(args) -> int:
    try:
        info = demo(args.out, preset=args.preset, learned=False if args.no_learned else None)
    except ImportError as exc:
        print(f"bottomup demo: {exc}; install the plotting extra: pip install 'bottomup[plot]'",
              file=sys.stderr)
        return 2
    print(f"wrote {info['figure']} and {info['ucm2']}")
    print("  " + ", ".join(f"{k} {v:.2f}s" for k, v in info["seconds"].items()))
    return 0


def register(subparsers) -> None:
    """Add ``demo`` to the ``bottomup`` command line."""
    from bottomup.cli import add_command

    p = add_command(subparsers, "demo", _run, "run the engine on a bundled image and draw a figure",
                    __doc__)
    p.add_argument("--out", default="bottomup-demo", help="output folder (default ./bottomup-demo)")
    p.add_argument("--preset", choices=("fast", "balanced", "quality", "medium"), default="fast",
                   help="gPb preset (default fast)")
    p.add_argument("--no-learned", action="store_true", help="skip the learned contours (torch)")
