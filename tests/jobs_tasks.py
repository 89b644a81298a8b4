"""Tasks used by the job-runner tests (importable by worker processes and Dask workers)."""

import time
from pathlib import Path

import numpy as np

from bottomup.io import read_image
from bottomup.jobs import atomic_path


def mean_color(in_path, out_path, delay=0.0):
    """Write the image's per-channel mean and a small thumbnail as .npy (deterministic)."""
    img = read_image(in_path)
    time.sleep(delay)
    out = np.concatenate([img.mean(axis=(0, 1)), img[::4, ::4].ravel()])
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        np.save(f, out)
    return {"shape": list(img.shape)}


def mean_color_slow_write(in_path, out_path, pause=0.1):
    """Like :func:`mean_color`, but writes its output in two halves ``pause`` seconds apart.

    The write then lasts long enough for two processes on one output to overlap inside it, so a
    temporary name shared between them would show up as a torn or missing file.
    """
    import io

    img = read_image(in_path)
    out = np.concatenate([img.mean(axis=(0, 1)), img[::4, ::4].ravel()])
    buf = io.BytesIO()
    np.save(buf, out)
    data = buf.getvalue()
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(pause)
        f.write(data[len(data) // 2:])
    return {"shape": list(img.shape)}


def scaled_mean(in_path, out_path, scale=1.0, model=None, extra=False, fail_after_start=False):
    """Write ``scale`` times the image's channel means; ``model`` names a (fake) model file whose
    SHA-256 the job must record; ``extra`` also writes ``<stem>_extra.npy`` (listed in the info)."""
    if fail_after_start:
        raise RuntimeError("failing on purpose")
    img = read_image(in_path)
    info = {"height": int(img.shape[0]), "width": int(img.shape[1])}
    out = np.asarray(img.mean(axis=(0, 1))) * scale
    if extra:
        name = f"{Path(out_path).stem}_extra.npy"
        with atomic_path(Path(out_path).with_name(name)) as tmp, open(tmp, "wb") as f:
            np.save(f, out)
        info["outputs"] = [name]
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        np.save(f, out)
    return info


scaled_mean.model_files = lambda model=None, **params: [model] if model else []


def mean_color_any_params(in_path, out_path, **params):
    """:func:`mean_color` standing in for a real task: takes (and ignores) any parameters."""
    return mean_color(in_path, out_path)
