"""The folder behind ``bottomup annotate``: images, cached hierarchies and annotations.

No web framework here: :class:`Workspace` does the work of every endpoint and raises
:class:`RequestError` (with the HTTP status to answer) on bad input, so that it can be tested and
scripted without a server. Layout on disk::

    FOLDER/<name>                               the images (one level, no sub-folders)
    FOLDER/annotations/<stem>.png               label image (0 = none, 1..K), 8 or 16 bit
    FOLDER/annotations/<stem>.json              the same as COCO RLE (one annotation per label)
    FOLDER/annotations/.scribbles/<stem>.png    the scribbles the labels were grown from
    FOLDER/annotations/.cache/<stem>.<tag>.npz  the hierarchy's ucm2 (bottomup.write_ucm2)

``<stem>`` is the image name without its extension, or the whole name when two images share a
stem. Every file is written atomically (temporary file beside it, then rename).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import functools
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Extensions listed as images (what OpenCV decodes).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
#: Extensions a browser shows as they are; others are converted to PNG for the page.
BROWSER_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Default limit of a request body (bytes).
MAX_BODY = 64 * 1024 * 1024


class RequestError(Exception):
    """A request the workspace refuses or cannot do; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Pending(Exception):
    """The hierarchy is not ready yet; ``progress`` is the JSON to answer (HTTP 202)."""

    def __init__(self, progress: dict):
        super().__init__(progress.get("message", "computing"))
        self.progress = progress


def _compute_ucm2_file(hierarchy_fn, image_path: str, cache_path: str) -> dict:
    """Job body (thread or worker process): image -> hierarchy -> ucm2 written atomically."""
    from bottomup.hierarchy import Hierarchy
    from bottomup.io import read_image, write_ucm2
    from bottomup.validate import check_ucm2

    t0 = time.perf_counter()
    image = read_image(image_path)
    h = hierarchy_fn(image)
    ucm2 = h.to_ucm2() if isinstance(h, Hierarchy) else check_ucm2(h, name="hierarchy")
    if ucm2.shape != (2 * image.shape[0] + 1, 2 * image.shape[1] + 1):
        raise ValueError(
            f"the hierarchy function returned a ucm2 of shape {ucm2.shape} for an image of "
            f"{image.shape[:2]}"
        )
    write_ucm2(cache_path, ucm2)
    # fresh means "not older than the image" (as make): an image stamped in the future must not
    # make its cache look stale forever
    img_mtime = os.stat(image_path).st_mtime
    if os.stat(cache_path).st_mtime < img_mtime:
        os.utime(cache_path, (img_mtime, img_mtime))
    return {"seconds": time.perf_counter() - t0, "pixels": int(image.shape[0] * image.shape[1])}


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl+C in the terminal stops the server, which ends the worker."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Job:
    def __init__(self, name: str, future: cf.Future, n_pixels: int | None):
        self.name = name
        self.future = future
        self.submitted = time.monotonic()
        self.n_pixels = n_pixels
        self.started: float | None = None


class Workspace:
    """Images of one folder with their hierarchies (computed once, in the background) and labels.

    Parameters
    ----------
    folder : str or path-like
        The folder of images. Annotations go to ``folder/annotations``.
    contours : {"auto", "learned", "gpb"}, optional
        Contours of the default hierarchy (:func:`bottomup.interactive.default_hierarchy`).
    hierarchy_fn : callable, optional
        ``fn(image) -> Hierarchy or ucm2`` used instead of the default (must be picklable
        for ``workers="process"``); its ``__name__`` tags the cache files.
    workers : {"process", "thread"}, optional
        Where hierarchies are computed: one worker process (default: the server stays responsive
        while numba and torch run) or one thread.
    max_body : int, optional
        Largest request body accepted, in bytes.
    labels : sequence of str, optional
        Names of labels ``1..K`` (COCO categories); others are named ``label <k>``.
    """

    def __init__(self, folder, *, contours: str = "auto", hierarchy_fn: Callable | None = None,
                 workers: str = "process", max_body: int = MAX_BODY, labels=()):
        from bottomup.interactive import default_contours, default_hierarchy

        self.folder = os.path.realpath(os.fspath(folder))
        if not os.path.isdir(self.folder):
            raise FileNotFoundError(f"FOLDER {os.fspath(folder)!r} is not a directory")
        if workers not in ("process", "thread"):
            raise ValueError(f"`workers` must be 'process' or 'thread', got {workers!r}")
        if contours not in ("auto", "learned", "gpb"):
            raise ValueError(f"`contours` must be 'auto', 'learned' or 'gpb', got {contours!r}")
        if hierarchy_fn is None:
            if contours == "auto":
                contours = "learned" if default_contours() == "learned" else "gpb"
            self.hierarchy_fn = functools.partial(default_hierarchy, contours=contours)
            self.tag = contours
        else:
            self.hierarchy_fn = hierarchy_fn
            self.tag = getattr(hierarchy_fn, "__name__", "custom").strip("<>_") or "custom"
        self.max_body = int(max_body)
        self.label_names = [str(x) for x in labels]
        self.annotations = os.path.join(self.folder, "annotations")
        if workers == "process":
            ctx = multiprocessing.get_context("spawn")
            self._executor: cf.Executor = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx,
                                                                 initializer=_ignore_sigint)
        else:
            self._executor = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hierarchy")
        self._lock = threading.RLock()  # re-entered when a job is done before its callback is added
        self._jobs: dict[str, _Job] = {}
        self._errors: dict[str, str] = {}
        self._rate: list[float] = []  # seconds per megapixel of finished jobs
        self._zones = collections.OrderedDict()  # name -> (mtime, FlatZones, bytes), an LRU
        self._zones_bytes = 512 << 20
        self._sizes: dict[str, tuple[float, tuple[int, int]]] = {}
        self._listing: tuple[int, tuple[str, ...]] | None = None

    # -- names and paths ---------------------------------------------------------------------------
    def images(self) -> list[str]:
        """File names of the images in the folder, sorted (hidden files left out)."""
        stamp = os.stat(self.folder).st_mtime_ns  # changes when a file is added, removed, renamed
        if self._listing is not None and self._listing[0] == stamp:
            return list(self._listing[1])
        with os.scandir(self.folder) as it:
            names = sorted(
                e.name for e in it
                if e.is_file() and not e.name.startswith(".")
                and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
            )
        self._listing = (stamp, tuple(names))
        return names

    def check_name(self, name) -> str:
        """Return ``name`` if it is an image of the folder, else raise RequestError (400/404)."""
        if not isinstance(name, str) or not name:
            raise RequestError(400, "the image name is empty")
        if (
            "/" in name or "\\" in name or "\x00" in name or name in (".", "..")
            or os.path.isabs(name) or name != os.path.basename(name)
        ):
            raise RequestError(
                400, f"image name {name!r} is a path: give a file name of FOLDER as GET /api/images "
                "lists it (no '/', '\\' or '..')"
            )
        if name not in self.images():
            raise RequestError(404, f"no image named {name!r} in FOLDER (GET /api/images lists them)")
        path = os.path.realpath(os.path.join(self.folder, name))
        if os.path.dirname(path) != self.folder:  # a symlink that leads out of FOLDER
            raise RequestError(403, f"image {name!r} is a link to a file outside FOLDER")
        return name

    def image_path(self, name: str) -> str:
        return os.path.join(self.folder, self.check_name(name))

    def _key(self, name: str) -> str:
        stem = os.path.splitext(name)[0]
        same = [n for n in self.images() if os.path.splitext(n)[0] == stem]
        return stem if len(same) <= 1 else name

    def cache_path(self, name: str) -> str:
        return os.path.join(self.annotations, ".cache", f"{self._key(name)}.{self.tag}.npz")

    def annotation_paths(self, name: str) -> tuple[str, str]:
        key = self._key(name)
        return (os.path.join(self.annotations, f"{key}.png"),
                os.path.join(self.annotations, f"{key}.json"))

    def scribbles_path(self, name: str) -> str:
        return os.path.join(self.annotations, ".scribbles", f"{self._key(name)}.png")

    def image_size(self, name: str) -> tuple[int, int]:
        """``(H, W)`` of an image (decoded once, remembered until the file changes)."""
        import cv2

        path = self.image_path(name)
        mtime = os.stat(path).st_mtime
        hit = self._sizes.get(name)
        if hit and hit[0] == mtime:
            return hit[1]
        arr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise RequestError(422, f"cannot decode image {name!r}: not an image OpenCV can read")
        size = (int(arr.shape[0]), int(arr.shape[1]))
        self._sizes[name] = (mtime, size)
        return size

    # -- hierarchy ---------------------------------------------------------------------------------
    def _cache_fresh(self, name: str) -> bool:
        cache = self.cache_path(name)
        try:
            return os.stat(cache).st_mtime >= os.stat(os.path.join(self.folder, name)).st_mtime
        except FileNotFoundError:
            return False

    def hierarchy_file(self, name: str) -> str:
        """Path of the cached ucm2 ``.npz``; raises :class:`Pending` (and starts the job) if absent."""
        self.check_name(name)
        if self._cache_fresh(name):
            return self.cache_path(name)
        with self._lock:
            if name in self._errors:
                msg = self._errors.pop(name)  # reported once; the next request tries again
                raise RequestError(500, f"computing the hierarchy of {name!r} failed: {msg}")
            job = self._jobs.get(name)
            if job is None:
                job = self._submit(name)
            raise Pending(self._progress(job))

    def start(self, name: str) -> None:
        """Queue the hierarchy of ``name`` unless it is cached or queued already."""
        with contextlib.suppress(Pending):
            self.hierarchy_file(name)

    def _submit(self, name: str) -> _Job:
        path = os.path.join(self.folder, name)
        try:
            h, w = self.image_size(name)
            n_pixels = h * w
        except RequestError:
            n_pixels = None
        fut = self._executor.submit(_compute_ucm2_file, self.hierarchy_fn, path, self.cache_path(name))
        job = _Job(name, fut, n_pixels)
        self._jobs[name] = job
        fut.add_done_callback(functools.partial(self._finished, name))
        return job

    def _finished(self, name: str, fut: cf.Future) -> None:
        with self._lock:
            self._jobs.pop(name, None)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                self._errors[name] = f"{type(exc).__name__}: {exc}"
            else:
                res = fut.result()
                self._rate.append(res["seconds"] / max(res["pixels"], 1) * 1e6)

    def _progress(self, job: _Job) -> dict:
        now = time.monotonic()
        running = job.future.running()
        if running and job.started is None:
            job.started = now
        ahead = [j for j in self._jobs.values() if j.submitted < job.submitted and not j.future.done()]
        elapsed = now - (job.started if job.started is not None else job.submitted)
        estimate = None
        if self._rate and job.n_pixels:
            estimate = float(np.median(self._rate)) * job.n_pixels / 1e6
        progress = None if estimate is None else min(0.99, elapsed / max(estimate, 1e-9))
        status = "computing" if running else "queued"
        what = f"the hierarchy of {job.name} ({self.tag})"
        if status == "queued":
            msg = f"{what} is queued behind {len(ahead)} image(s)"
        elif estimate is None:
            msg = f"computing {what}: {elapsed:.0f} s so far"
        else:
            msg = f"computing {what}: {elapsed:.0f} s of about {estimate:.0f} s"
        return {"status": status, "image": job.name, "contours": self.tag, "elapsed_s": round(elapsed, 2),
                "estimate_s": None if estimate is None else round(estimate, 2),
                "progress": None if progress is None else round(progress, 3),
                "queue_position": len(ahead), "message": msg}

    def zones(self, name: str):
        """The cached hierarchy as :class:`bottomup.interactive.FlatZones`, kept in a small LRU.

        Loaded from the ``.npz`` once per image (about 10 ms for a BSDS image); each
        :meth:`segment` then costs about a millisecond. :class:`Pending` if not computed yet.
        """
        from bottomup.interactive import flat_zones
        from bottomup.io import read_ucm2

        path = self.hierarchy_file(name)
        mtime = os.stat(path).st_mtime
        with self._lock:
            hit = self._zones.get(name)
            if hit is not None and hit[0] == mtime:
                self._zones.move_to_end(name)
                return hit[1]
        z = flat_zones(read_ucm2(path))
        size = z.pixel_zone.nbytes + z.indices.nbytes + 16 * z.n_zones
        with self._lock:
            self._zones[name] = (mtime, z, size)
            self._zones.move_to_end(name)
            while len(self._zones) > 1 and sum(v[2] for v in self._zones.values()) > self._zones_bytes:
                self._zones.popitem(last=False)
        return z

    # -- PNG label images --------------------------------------------------------------------------
    def read_label_png(self, name: str, body: bytes, what: str) -> np.ndarray:
        """Decode a single-channel label PNG of the size of image ``name`` (400/413/415 if not)."""
        import cv2

        if len(body) > self.max_body:
            raise RequestError(413, f"{what} is {len(body)} bytes, over the limit of {self.max_body}")
        if not body.startswith(PNG_SIGNATURE):
            raise RequestError(415, f"{what} must be a PNG image (body does not start with the PNG "
                                    f"signature; got {body[:8]!r})")
        arr = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise RequestError(400, f"{what} starts like a PNG but cannot be decoded (truncated?)")
        if arr.ndim != 2:
            raise RequestError(400, f"{what} must be a single-channel (gray) label PNG, 8 or 16 bit, "
                                    f"got {arr.shape[2]} channels")
        size = self.image_size(name)
        if arr.shape != size:
            raise RequestError(400, f"{what} is {arr.shape[1]}x{arr.shape[0]} (WxH) but image {name!r} "
                                    f"is {size[1]}x{size[0]}")
        return arr

    @staticmethod
    def encode_labels(labels: np.ndarray) -> bytes:
        """Labels -> PNG bytes (8-bit gray when they fit, else 16-bit)."""
        import cv2

        arr = labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)
        ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:  # pragma: no cover - OpenCV always encodes 2-D uint8/uint16
            raise RuntimeError("OpenCV could not encode the labels as PNG")
        return buf.tobytes()

    # -- endpoints' work ---------------------------------------------------------------------------
    def segment(self, name: str, body: bytes) -> bytes:
        """Scribbles PNG -> labels PNG (:func:`bottomup.interactive.segment` on the cached hierarchy)."""
        from bottomup.interactive import segment

        self.check_name(name)
        seeds = self.read_label_png(name, body, "the scribbles")
        if not seeds.any():
            raise RequestError(400, "the scribbles have no label: draw at least one pixel with a label >= 1")
        return self.encode_labels(segment(self.zones(name), seeds))

    def coco(self, name: str, labels: np.ndarray) -> dict:
        """COCO document of a label image: one annotation (RLE) per label ``>= 1`` present."""
        from bottomup.masks import boxes_to_coco, masks_to_rle, rle_to_boxes

        h, w = labels.shape
        present = [int(v) for v in np.unique(labels) if v > 0]
        annotations, categories = [], []
        for k, v in enumerate(present, start=1):
            mask = labels == v
            rle = masks_to_rle(mask)
            box = boxes_to_coco(rle_to_boxes([rle]))[0]
            annotations.append({
                "id": k, "image_id": 1, "category_id": v, "iscrowd": 0,
                "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                "area": int(mask.sum()), "bbox": [float(x) for x in box],
            })
        n_cat = max(present + [len(self.label_names)])
        for v in range(1, n_cat + 1):
            nm = self.label_names[v - 1] if v <= len(self.label_names) else f"label {v}"
            categories.append({"id": v, "name": nm})
        return {
            "info": {"description": f"bottomup annotate: labels of {name}"},
            "images": [{"id": 1, "file_name": name, "height": h, "width": w}],
            "annotations": annotations,
            "categories": categories,
        }

    def put_annotation(self, name: str, body: bytes) -> dict:
        """Write the label PNG and its COCO JSON, both atomically; returns a summary."""
        from bottomup.io.files import atomic_path

        self.check_name(name)
        labels = self.read_label_png(name, body, "the annotation")
        doc = self.coco(name, labels)
        png_path, json_path = self.annotation_paths(name)
        data = self.encode_labels(labels)
        text = json.dumps(doc)
        # both temporaries are complete before either is renamed into place
        try:
            with atomic_path(png_path) as tmp_png, atomic_path(json_path) as tmp_json:
                tmp_png.write_bytes(data)
                tmp_json.write_text(text)
        except OSError as exc:
            raise RequestError(500, f"could not write the annotation of {name!r}: {exc}") from exc
        return {"image": name, "png": os.path.relpath(png_path, self.folder),
                "json": os.path.relpath(json_path, self.folder),
                "labels": [a["category_id"] for a in doc["annotations"]]}

    def get_annotation(self, name: str, fmt: str = "png"):
        """The saved annotation: PNG bytes, or the COCO dict for ``fmt="coco"`` (404 if none)."""
        self.check_name(name)
        if fmt not in ("png", "coco"):
            raise RequestError(400, f"format must be 'png' or 'coco', got {fmt!r}")
        png_path, json_path = self.annotation_paths(name)
        path = png_path if fmt == "png" else json_path
        if not os.path.exists(path):
            raise RequestError(404, f"image {name!r} has no saved annotation yet (PUT one first)")
        return Path(path).read_bytes() if fmt == "png" else json.loads(Path(path).read_text())

    def put_scribbles(self, name: str, body: bytes) -> dict:
        from bottomup.io.files import atomic_path

        self.check_name(name)
        seeds = self.read_label_png(name, body, "the scribbles")
        path = self.scribbles_path(name)
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(self.encode_labels(seeds))
        except OSError as exc:
            raise RequestError(500, f"could not write the scribbles of {name!r}: {exc}") from exc
        return {"image": name, "path": os.path.relpath(path, self.folder)}

    def get_scribbles(self, name: str) -> bytes:
        self.check_name(name)
        path = self.scribbles_path(name)
        if not os.path.exists(path):
            raise RequestError(404, f"image {name!r} has no saved scribbles")
        return Path(path).read_bytes()

    def details(self) -> list[dict]:
        """One dict per image: name, whether it is annotated, the state of its hierarchy."""
        out = []
        for name in self.images():
            with self._lock:
                job = self._jobs.get(name)
            state = "ready" if self._cache_fresh(name) else ("computing" if job else "none")
            out.append({"name": name, "annotated": os.path.exists(self.annotation_paths(name)[0]),
                        "hierarchy": state})
        return out

    def close(self) -> None:
        """Stop the hierarchy worker now: queued jobs are dropped, a running one is killed.

        The job writes its cache atomically, so a killed one leaves no cache file, only its
        temporary (``.cache/.<stem>.*.part.npz``), removed here.
        """
        import glob

        procs = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # a process worker would otherwise finish its hierarchy first
            proc.terminate()
        for proc in procs:
            proc.join(10)
        if procs:
            for tmp in glob.glob(os.path.join(glob.escape(self.annotations), ".cache", ".*.part.npz")):
                with contextlib.suppress(OSError):
                    os.remove(tmp)
