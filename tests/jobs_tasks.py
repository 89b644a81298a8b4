"""Tasks used by the job-runner tests (importable by worker processes and Dask workers)."""

import time

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
