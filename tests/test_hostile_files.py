"""Hostile files (issue 21, item 4): every reader and folder job gives a clear error naming the file.

The files are built in ``tmp_path`` by ``tests/hostile_files.py`` (``python tests/hostile_files.py``
prints the table of what each one gets). Permissions: we usually run as root, who may read a
``chmod 000`` file, so as root the read runs in a child process dropped to uid 65534 (nobody).
"""

from __future__ import annotations

import atexit
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bottomup.io import PixelLimitError, read_bsds_gt, read_image, read_msrc21, read_ucm2
from bottomup.io.images import _jpeg_complete
from bottomup.jobs import TASKS, run_job
from tests import hostile_files as hf

TASKS.setdefault("test-mean", "tests.jobs_tasks:mean_color")
ROOT = Path(__file__).resolve().parents[1]

READERS = {"image": read_image, "ucm2": read_ucm2, "gt": read_bsds_gt}
CASES = ([("image", *c) for c in hf.HOSTILE_IMAGES] + [("ucm2", *c) for c in hf.HOSTILE_UCM2]
         + [("gt", *c) for c in hf.HOSTILE_GT])


def _check_error(exc_info, path, exc_name, pattern):
    exc = exc_info.value
    assert type(exc).__name__ == exc_name, f"{type(exc).__name__}: {exc}"
    assert str(path) in str(exc), f"the message does not name the file: {exc}"
    assert re.search(pattern, str(exc)), f"{pattern!r} not in {exc}"


@pytest.mark.parametrize(("reader", "name", "build", "exc_name", "pattern"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_hostile_file_gets_a_clear_error(tmp_path, reader, name, build, exc_name, pattern):
    path = hf.write(tmp_path / name, build())
    with pytest.raises(ValueError) as info:
        READERS[reader](path)
    _check_error(info, path, exc_name, pattern)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # nothing written beside it


def test_msrc_reader_on_hostile_files(tmp_path):
    huge = hf.patch_dims(hf.mat_bytes({"newseg": np.ones((4, 5), np.uint8), "newlabels": np.array([[1]])},
                                      compress=False), (4, 5), (40000, 40000))
    cases = {
        "empty_GT.mat": (b"", ValueError, "empty"),
        "junk_GT.mat": (b"\x00" * 300, ValueError, "cannot read|not a valid"),
        "neg_GT.mat": (hf.mat_bytes({"newseg": -np.ones((3, 3)), "newlabels": np.array([[1]])}),
                       ValueError, "segment ids >= 0"),
        "huge-id_GT.mat": (hf.mat_bytes({"newseg": np.array([[1, 2_000_000_000]], np.int32),
                                         "newlabels": np.array([[1, 2]])}), None, None),
        "claims_GT.mat": (huge, PixelLimitError, "40000 x 40000"),
    }
    for name, (data, exc, pattern) in cases.items():
        path = hf.write(tmp_path / name, data)
        if exc is None:  # a huge segment id is legal and must not build a 2e9-entry lookup table
            np.testing.assert_array_equal(read_msrc21(path), [[0, 255]])
            continue
        with pytest.raises(exc, match=pattern) as info:
            read_msrc21(path)
        assert str(path) in str(info.value)


def test_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    import cv2

    path = hf.write(tmp_path / "bomb.png", hf.png_bomb(1500))  # 2.25 Mpx of zeros in a few kB
    assert path.stat().st_size < 20_000
    real = cv2.imdecode

    def no_decode(*a, **k):
        raise AssertionError("decoded a file that its header already disqualified")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    with pytest.raises(PixelLimitError, match=r"1500 x 1500 = 2250000 pixels.*max_pixels"):
        read_image(path, max_pixels=2_000_000)
    monkeypatch.setenv("BOTTOMUP_MAX_IMAGE_PIXELS", "2_000_000")
    with pytest.raises(PixelLimitError, match="2250000"):
        read_image(path)
    monkeypatch.setattr(cv2, "imdecode", real)
    assert read_image(path, max_pixels=2_250_000).shape == (1500, 1500, 3)  # the limit is inclusive
    monkeypatch.setenv("BOTTOMUP_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="BOTTOMUP_MAX_IMAGE_PIXELS must be a positive integer"):
        read_image(path)
    with pytest.raises(ValueError, match="`max_pixels` must be a positive integer"):
        read_image(path, max_pixels=0)


def test_memory_stays_small_on_every_hostile_file(tmp_path):
    """In a fresh process (its own peak RSS): the bombs claim 1.6-6.4 Gpx and a 2e9-entry cell array."""
    # the child reports the peak of its own address space (VmHWM): rusage's maxrss also counts the
    # moment between fork and exec, when the child is still a copy of this (large) test process
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.hostile_files import table\n"
            f"rows = table({str(tmp_path)!r})\n"
            "assert all(r[2] != '(no error)' for r in rows), rows\n"
            "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])\n")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, check=True)
    peak_mb = int(proc.stdout.split()[-1]) / 1024
    assert peak_mb < 800, f"peak RSS {peak_mb:.0f} MB reading the hostile files"


def test_what_odd_images_become(tmp_path):
    from PIL import Image, ImageOps

    # 1x1: a valid image
    px = hf.write(tmp_path / "one.png", hf.png_bytes(np.array([[[10, 20, 30]]], np.uint8)))
    np.testing.assert_array_equal(read_image(px), [[[10 / 255, 20 / 255, 30 / 255]]])
    # 16 bit: full precision, / 65535
    a16 = np.array([[0, 1, 65534, 65535], [257, 2, 3, 4]], np.uint16)
    p16 = hf.write(tmp_path / "deep.png", hf.png16_bytes(a16))
    np.testing.assert_array_equal(read_image(p16)[..., 1], a16 / 65535.0)
    # CMYK JPEG: RGB again (no colour profile), close to the RGB it was made from
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :8] = (200, 30, 40)
    rgb[:, 8:16] = (20, 180, 60)
    rgb[:, 16:] = (250, 250, 250)
    cm = hf.write(tmp_path / "cmyk.jpg", hf.cmyk_jpeg(rgb))
    assert Image.open(cm).mode == "CMYK"
    assert np.abs(read_image(cm) - rgb / 255.0).mean() < 0.02
    # animated GIF: the first frame
    gif = hf.write(tmp_path / "anim.gif", hf.animated_gif((30, 220)))
    assert Image.open(gif).n_frames == 2
    np.testing.assert_allclose(read_image(gif), 30 / 255, atol=1 / 255)
    # EXIF orientation applied: against Pillow's exif_transpose, an independent implementation
    for orientation in (3, 6, 8):
        ex = hf.write(tmp_path / f"exif{orientation}.jpg", hf.exif_rotated_jpeg(orientation))
        want = np.asarray(ImageOps.exif_transpose(Image.open(ex)).convert("RGB")) / 255.0
        got = read_image(ex)
        assert got.shape == want.shape and (got.shape == (20, 30, 3)) == (orientation == 3)
        assert np.abs(got - want).max() < 3 / 255
    got6 = read_image(tmp_path / "exif6.jpg")  # orientation 6: rotate 90 degrees clockwise to view
    assert got6.shape == (30, 20, 3) and got6[:5, -5:].min() > 0.9 and got6[-5:, :5].max() < 0.1


def test_jpeg_completeness_check():
    """OpenCV < 5 decodes a truncated JPEG into a grey-filled image; this check catches it."""
    full = hf.jpeg_bytes()
    assert _jpeg_complete(full)
    for n in (20, len(full) // 3, len(full) // 2, len(full) - 2):
        assert not _jpeg_complete(full[:n])
    # an EXIF thumbnail (a whole JPEG, EOI included, inside APP1) must not make a cut image pass
    from PIL import Image

    im = Image.fromarray(hf.noise(64, 64))
    exif = Image.Exif()
    exif[0x0112] = 1
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    with_app = buf.getvalue()
    thumb = hf.jpeg_bytes(hf.noise(8, 8, seed=1))
    app1 = b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    stuffed = with_app[:2] + app1 + with_app[2:]
    assert _jpeg_complete(stuffed) and not _jpeg_complete(stuffed[: len(stuffed) // 2])


@pytest.mark.parametrize(("reader", "name"), [(read_image, "x.jpg"), (read_ucm2, "x.mat"),
                                               (read_bsds_gt, "x.mat"), (read_ucm2, "x.npz")])
def test_directories_and_fifos_are_refused_without_blocking(tmp_path, reader, name):
    d = tmp_path / "dir" / name
    d.mkdir(parents=True)
    with pytest.raises(ValueError, match="is a directory; expected a regular file") as info:
        reader(d)
    assert str(d) in str(info.value)
    fifo = tmp_path / name
    os.mkfifo(fifo)
    box = {}

    def read():
        try:
            reader(fifo)
        except Exception as exc:  # noqa: BLE001
            box["exc"] = exc

    th = threading.Thread(target=read, daemon=True)
    th.start()
    th.join(20)
    if th.is_alive():  # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{reader.__name__} blocked on a FIFO")
    assert isinstance(box.get("exc"), ValueError) and "FIFO" in str(box["exc"]), box
    assert str(fifo) in str(box["exc"])


def _read_all(paths):
    out = []
    for reader, path in zip((read_image, read_ucm2, read_bsds_gt), paths, strict=True):
        try:
            reader(path)
            out.append(f"NO ERROR {reader.__name__}")
        except Exception as exc:  # noqa: BLE001
            out.append(f"{type(exc).__name__} | {exc}")
    return out


def _read_as_nobody(paths):
    """Fork, drop to uid/gid 65534 in the child (the modules are already imported), read, report."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, json.dumps(_read_all(paths)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data) if data else None


def test_unreadable_permissions():
    """chmod 000. Root reads anything, so as root the readers run in a forked child dropped to nobody."""
    base = Path(tempfile.mkdtemp(prefix="bottomup-perm-"))  # in /tmp, so that nobody may enter it
    try:
        os.chmod(base, 0o755)
        img = hf.write(base / "locked.png", hf.png_bytes())
        mat = hf.write(base / "locked.mat", hf.mat_bytes({"ucm2": np.zeros((5, 7))}))
        for p in (img, mat):
            os.chmod(p, 0)
        paths = (img, mat, mat)
        lines = _read_as_nobody(paths) if os.geteuid() == 0 else _read_all(paths)
        if lines is None:
            pytest.skip("could not drop to uid 65534 to test permissions as root")
        for line, path in zip(lines, paths, strict=True):
            assert line.startswith("PermissionError |"), line
            assert str(path) in line and "permission denied" in line
    finally:
        for p in base.iterdir():
            os.chmod(p, 0o600)
        shutil.rmtree(base)


# --- fuzz ---------------------------------------------------------------------------------------

_PREFIXES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
             b"RIFF\x00\x00\x00\x00WEBP", b"P6\n", b"P5\n", b"PK\x03\x04",
             hf.mat_bytes({"ucm2": np.zeros((5, 7))})[:128]]
_FUZZ_DIR = Path(tempfile.mkdtemp(prefix="bottomup-fuzz-"))  # hypothesis and tmp_path do not mix
atexit.register(shutil.rmtree, _FUZZ_DIR, ignore_errors=True)


def _mutations():
    """Random bytes, random bytes behind a real magic/header, or a real file with bytes flipped."""
    seeds = [hf.png_bytes(hf.noise(6, 7)), hf.jpeg_bytes(hf.noise(6, 7)),
             hf.mat_bytes({"ucm2": np.zeros((5, 7))}), hf.mat_bytes(hf.small_gt()),
             hf.npz_bytes(ucm2=np.zeros((5, 7))), hf.animated_gif()]
    edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8)
    flipped = st.tuples(st.sampled_from(seeds), edits, st.integers(0, 10**6)).map(lambda t: _flip(*t))
    prefixed = st.tuples(st.sampled_from(_PREFIXES), st.binary(max_size=512)).map(lambda t: t[0] + t[1])
    return st.one_of(st.binary(max_size=512), prefixed, flipped)


def _flip(data, edits, cut):
    b = bytearray(data)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[: max(1, cut % (len(b) + 1))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_mutations(), ext=st.sampled_from([".jpg", ".png", ".gif", ".bmp", ".tif", ".mat", ".npz"]))
def test_fuzz_readers(data, ext):
    """Every reader either returns its contract or raises ValueError naming the file; no other type."""
    path = _FUZZ_DIR / f"fuzz{ext}"
    path.write_bytes(data)
    readers = [read_image] if ext not in (".mat", ".npz") else [read_ucm2]
    if ext == ".mat":
        readers += [read_bsds_gt, read_msrc21]
    if ext == ".png":
        readers.append(read_ucm2)
    for reader in readers:
        try:
            out = reader(path, max_pixels=100_000)
        except ValueError as exc:
            assert str(path) in str(exc), f"{reader.__name__}: {type(exc).__name__}: {exc}"
            continue
        if reader is read_image:
            assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.float64
            assert 0 <= out.min() and out.max() <= 1
        elif reader is read_ucm2:
            assert out.ndim == 2 and out.shape[0] % 2 == 1 and out.shape[1] % 2 == 1


# --- folder jobs ---------------------------------------------------------------------------------

_JOB_FILES = {
    "empty.jpg": lambda: b"",
    "cut-jpeg.jpg": lambda: hf.half(hf.jpeg_bytes()),
    "cut-png.png": lambda: hf.half(hf.png_bytes()),
    "text.jpg": lambda: b"just text\n" * 10,
    "bomb.png": lambda: hf.png_claiming(40000, 40000),
}
_JOB_ERRORS = {
    "empty.jpg": "empty \\(0 bytes\\)", "cut-jpeg.jpg": "truncated", "cut-png.png": "truncated",
    "text.jpg": "not an image format", "bomb.png": "PixelLimitError: .*1600000000 pixels",
    "fifo.png": "FIFO", "folder.jpg": "is a directory", "tiny.png": "at least 21 px",
}


def _hostile_folder(d: Path, *, good=0, tiny=False) -> Path:
    d.mkdir()
    for name, build in _JOB_FILES.items():
        hf.write(d / name, build())
    os.mkfifo(d / "fifo.png")
    (d / "folder.jpg").mkdir()
    if tiny:
        hf.write(d / "tiny.png", hf.png_bytes(np.zeros((1, 1, 3), np.uint8)))
    for k in range(good):
        hf.write(d / f"good{k}.png", hf.png_bytes(hf.noise(seed=k)))
    return d


def _check_failures(res, out, expected):
    errors = {Path(r["input"]).name: r["error"] for r in res.failed}
    assert set(errors) == set(expected), errors
    for name, pattern in expected.items():
        assert re.search(pattern, errors[name]), (name, errors[name])
        assert name in errors[name] or name == "tiny.png", errors[name]  # the message names the file
    man = json.loads(res.manifest.read_text())
    assert {Path(r["input"]).name for r in man["failed"]} == set(expected)
    leftovers = [p.name for p in out.iterdir() if ".part" in p.name or (
        p.name.startswith(".") and not (p.name.endswith(".params.json") and (out / p.name[1:-12]).exists()))]
    assert not leftovers, leftovers  # nothing half-written; a record only beside its output


def test_job_goes_on_past_hostile_files(tmp_path):
    src = _hostile_folder(tmp_path / "in", good=3)
    out = tmp_path / "out"
    res = run_job("test-mean", [src], out, ext=".npy", progress=False)
    assert sorted(Path(r["input"]).name for r in res.done) == ["good0.png", "good1.png", "good2.png"]
    _check_failures(res, out, {k: v for k, v in _JOB_ERRORS.items() if k != "tiny.png"})
    assert sorted(p.name for p in out.glob("*.npy")) == ["good0.npy", "good1.npy", "good2.npy"]
    for p in out.glob("*.npy"):
        assert np.load(p).shape == (3 + 6 * 8 * 3,)  # complete and readable


@pytest.mark.parametrize(("task", "ext", "params"), [
    ("segment", ".mat", {"preset": "fast"}),
    ("proposals", ".json", {"n": 10}),
    ("deep", ".json", {}),
])
def test_real_folder_jobs_on_hostile_files(tmp_path, task, ext, params):
    """The real tasks: every hostile file (and a 1x1 image) fails with its reason, nothing is written."""
    if task == "deep":
        pytest.importorskip("torch")
    src = _hostile_folder(tmp_path / "in", tiny=True)
    out = tmp_path / "out"
    res = run_job(task, [src], out, ext=ext, params=params, progress=False)
    assert not res.done
    _check_failures(res, out, _JOB_ERRORS)
    assert sorted(p.name for p in out.iterdir()) == [f"manifest-{task}.json"]


def test_segment_cli_reports_each_hostile_file(tmp_path, capsys):
    from bottomup.cli import main

    src = _hostile_folder(tmp_path / "in")
    status = main(["segment", str(src), "--out", str(tmp_path / "out"), "--preset", "fast", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1
    for name in _JOB_FILES:
        assert re.search(rf"failed: .*{re.escape(name)}: \w+Error: .*{re.escape(name)}", err), (name, err)


def test_evaluate_goes_on_past_hostile_files(tmp_path):
    from bottomup.io import write_ucm2
    from bottomup.metrics.bsds import evaluate_folder
    from tests.test_bsds_folder import ucm2_from_labels, write_gt

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    lab = np.zeros((12, 16), int)
    lab[:, 8:] = 1
    bad_pred = {"a": ("a.mat", hf.half(hf.mat_bytes({"ucm2": np.zeros((25, 33))}))),
                "b": ("b.npz", hf.npz_claiming((80001, 80001))),
                "c": ("c.png", hf.png_claiming(40000, 40000)),
                "d": ("d.npy", b"\x93NUMPY junk")}
    for iid in ["a", "b", "c", "d", "e", "ok1", "ok2"]:
        write_gt(gt / f"{iid}.mat", [lab])
    for name, data in bad_pred.values():
        hf.write(pred / name, data)
    write_ucm2(pred / "e.mat", ucm2_from_labels(lab))
    hf.write(gt / "e.mat", hf.mat_claiming_cells(2_000_000_000))  # the ground truth is the bad one
    for iid in ["ok1", "ok2"]:
        write_ucm2(pred / f"{iid}.mat", ucm2_from_labels(lab))
    with pytest.raises(ValueError, match="5 of 7 image") as info:
        evaluate_folder(pred, gt, cache_dir=None, progress=False)
    msg = str(info.value)
    for name in ["a.mat", "b.npz", "c.png", "d.npy"]:
        assert str(pred / name) in msg
    assert str(gt / "e.mat") in msg and "PixelLimitError" in msg
    fig = evaluate_folder(pred, gt, cache_dir=None, progress=False, skip_failed=True)
    assert fig["n_images"] == 2 and fig["ids"] == ["ok1", "ok2"] and fig["ods"] == pytest.approx(1.0)
    assert sorted(r["id"] for r in fig["failed"]) == ["a", "b", "c", "d", "e"]
