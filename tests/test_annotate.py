"""Tests for ``bottomup annotate``: every HTTP endpoint and every bad request, on tiny images.

The hierarchy function is injected (the Lab-colour OWT-UCM of ``hierarchy_of_image``, a few
milliseconds on these images) and runs in a thread, so the default tier stays fast; the engine's
default hierarchy is tested in ``test_interactive.py``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
cv2 = pytest.importorskip("cv2")

with warnings.catch_warnings():  # starlette >= 1.x prefers httpx2 and warns about httpx
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient  # noqa: E402

from bottomup.annotate import Workspace, create_app  # noqa: E402
from bottomup.hierarchy import Hierarchy  # noqa: E402
from bottomup.interactive import hierarchy_of_image, segment  # noqa: E402
from bottomup.io import read_image  # noqa: E402
from bottomup.masks import rle_to_masks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def _disk(h=30, w=40, seed=0):
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:h, :w]
    gt = ((rr - h // 2) ** 2 + (cc - w // 2) ** 2 < (min(h, w) // 3) ** 2).astype(np.uint8) + 1
    img = np.where(gt[..., None] == 2, [200, 70, 50], [50, 100, 180]) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), gt


def _png(arr) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def _decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    a, _ = _disk()
    b, _ = _disk(20, 25, seed=1)
    cv2.imwrite(str(d / "a.png"), a)
    cv2.imwrite(str(d / "b.jpg"), b, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(d / "c.tif"), b)
    cv2.imwrite(str(d / ".hidden.png"), a)
    (d / "notes.txt").write_text("not an image")
    (d / "sub").mkdir()
    cv2.imwrite(str(d / "sub" / "deep.png"), a)
    cv2.imwrite(str(tmp_path / "secret.png"), a)  # outside FOLDER
    return d


def _client(folder, **kw) -> TestClient:
    kw.setdefault("hierarchy_fn", hierarchy_of_image)
    kw.setdefault("workers", "thread")
    return TestClient(create_app(folder, **kw), base_url="http://127.0.0.1")


def _wait_ready(client, name, timeout=30.0):
    t0 = time.monotonic()
    while True:
        r = client.get(f"/api/images/{name}/ucm2.npz")
        if r.status_code != 202:
            return r
        assert time.monotonic() - t0 < timeout, r.json()
        time.sleep(0.02)


@pytest.fixture
def client(folder):
    with _client(folder) as c:
        yield c


def _files_under(path):
    return sorted(os.path.relpath(os.path.join(r, f), path) for r, _, fs in os.walk(path) for f in fs)


# -- listing and the page ---------------------------------------------------------------------------
def test_list_images_only_the_images_of_folder(client):
    assert client.get("/api/images").json() == ["a.png", "b.jpg", "c.tif"]
    details = client.get("/api/images?details=1").json()
    assert [d["name"] for d in details] == ["a.png", "b.jpg", "c.tif"]
    assert all(d["annotated"] is False and d["hierarchy"] == "none" for d in details)


def test_page_and_static_files_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "<script src=\"app.js\"></script>" in r.text
    assert "cdn" not in r.text.lower() and "http" not in r.text.split("<body>")[1]
    js = client.get("/app.js")
    assert js.status_code == 200 and "encodeGray8PNG" in js.text
    assert client.get("/app.css").status_code == 200
    cfg = client.get("/api/config").json()
    assert cfg["contours"] == "hierarchy_of_image" and cfg["folder"] == "images"


def test_image_is_served_as_stored_or_as_png(client, folder):
    r = client.get("/api/images/a.png/image")
    assert r.status_code == 200 and r.content == (folder / "a.png").read_bytes()
    r = client.get("/api/images/c.tif/image")  # not a browser format: converted
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    np.testing.assert_array_equal(_decode(r.content), cv2.imread(str(folder / "c.tif")))


# -- hierarchy: 202 with progress, then the cached ucm2 ------------------------------------------
def test_ucm2_202_progress_then_200_and_cached_on_disk(folder):
    gate = threading.Event()
    calls = []

    def slow_hierarchy(image):
        calls.append(image.shape)
        assert gate.wait(10)
        return hierarchy_of_image(image)

    with _client(folder, hierarchy_fn=slow_hierarchy) as c:
        r = c.get("/api/images/a.png/ucm2.npz")
        assert r.status_code == 202 and r.headers["retry-after"] == "1"
        p = r.json()
        assert p["image"] == "a.png" and p["status"] in ("queued", "computing")
        assert "a.png" in p["message"] and p["elapsed_s"] >= 0 and p["queue_position"] == 0
        r2 = c.get("/api/images/b.jpg/ucm2.npz")  # queued behind a.png (one worker)
        assert r2.status_code == 202 and r2.json()["status"] == "queued"
        assert r2.json()["queue_position"] == 1
        assert c.get("/api/images?details=1").json()[0]["hierarchy"] == "computing"
        # segment while computing: 409 with the progress
        seeds = np.zeros((30, 40), np.uint8)
        seeds[2, 2] = 1
        r3 = c.post("/api/images/a.png/segment", content=_png(seeds))
        assert r3.status_code == 409 and "still being computed" in r3.json()["error"]
        gate.set()
        r = _wait_ready(c, "a.png")
        assert r.status_code == 200
        _wait_ready(c, "b.jpg")
        assert len(calls) == 2  # one computation per image, however often it was asked
    cache = folder / "annotations" / ".cache" / "a.slow_hierarchy.npz"
    assert cache.exists() and r.content == cache.read_bytes()
    with np.load(cache) as f:
        expected = hierarchy_of_image(read_image(folder / "a.png")).to_ucm2()
        np.testing.assert_array_equal(f["ucm2"], expected)
    # a second server on the same folder reads the cache: no new computation
    with _client(folder, hierarchy_fn=slow_hierarchy) as c:
        assert c.get("/api/images/a.png/ucm2.npz").status_code == 200
        assert len(calls) == 2
    # a newer image invalidates its cache
    later = os.stat(cache).st_mtime + 10
    os.utime(folder / "a.png", (later, later))
    with _client(folder, hierarchy_fn=slow_hierarchy) as c:
        assert c.get("/api/images/a.png/ucm2.npz").status_code == 202
        assert _wait_ready(c, "a.png").status_code == 200
        assert len(calls) == 3


def test_progress_estimate_from_finished_jobs(folder):
    with _client(folder) as c:
        _wait_ready(c, "a.png")
        gate = threading.Event()
        ws = c.app.state.workspace
        ws.hierarchy_fn = lambda image: gate.wait(10) and hierarchy_of_image(image)
        p = c.get("/api/images/b.jpg/ucm2.npz").json()
        assert p["estimate_s"] is not None and 0 <= p["progress"] <= 0.99
        gate.set()
        _wait_ready(c, "b.jpg")


def test_failed_hierarchy_is_a_500_with_the_reason_then_retried(folder):
    def broken(image):
        raise RuntimeError("no contours today")

    with _client(folder, hierarchy_fn=broken) as c:
        r = _wait_ready(c, "a.png")
        assert r.status_code == 500 and "no contours today" in r.json()["error"]
        assert c.get("/api/images/a.png/ucm2.npz").status_code == 202  # tried again
    assert not (folder / "annotations" / ".cache" / "a.broken.npz").exists()


def test_hierarchy_function_may_return_a_ucm2_array(folder):
    def as_ucm2(image):
        return hierarchy_of_image(image).to_ucm2()

    with _client(folder, hierarchy_fn=as_ucm2) as c:
        assert _wait_ready(c, "b.jpg").status_code == 200


# -- segment ------------------------------------------------------------------------------------------
def test_segment_equals_the_library_on_the_cached_hierarchy(client, folder):
    ucm2_bytes = _wait_ready(client, "a.png").content
    with np.load(__import__("io").BytesIO(ucm2_bytes)) as f:
        hierarchy = Hierarchy.from_ucm2(f["ucm2"])
    _, gt = _disk()
    seeds = np.zeros((30, 40), np.uint8)
    seeds[15, 17:23] = 2  # in the disk
    seeds[1, 2:38] = 1  # background
    r = client.post("/api/images/a.png/segment", content=_png(seeds))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    out = _decode(r.content)
    assert out.dtype == np.uint8 and out.shape == (30, 40)
    np.testing.assert_array_equal(out, segment(hierarchy, seeds))
    assert (out == gt).mean() > 0.95  # and it is the right answer on this easy image
    # 16-bit scribbles with large labels come back as 16 bit
    seeds16 = seeds.astype(np.uint16) * 300
    out16 = _decode(client.post("/api/images/a.png/segment", content=_png(seeds16)).content)
    assert out16.dtype == np.uint16
    np.testing.assert_array_equal(out16, segment(hierarchy, seeds16))


# -- annotations --------------------------------------------------------------------------------------
def test_put_get_annotation_png_and_coco(client, folder):
    _, gt = _disk()
    labels = gt.copy()
    labels[0, 0] = 0  # one unlabelled pixel: no annotation for 0
    r = client.put("/api/images/a.png/annotation", content=_png(labels))
    assert r.status_code == 200, r.text
    assert r.json() == {"image": "a.png", "png": "annotations/a.png", "json": "annotations/a.json",
                        "labels": [1, 2]}
    np.testing.assert_array_equal(cv2.imread(str(folder / "annotations" / "a.png"), -1), labels)
    doc = json.loads((folder / "annotations" / "a.json").read_text())
    assert doc["images"] == [{"id": 1, "file_name": "a.png", "height": 30, "width": 40}]
    assert [a["category_id"] for a in doc["annotations"]] == [1, 2]
    for a in doc["annotations"]:
        mask = rle_to_masks(a["segmentation"])
        np.testing.assert_array_equal(mask, labels == a["category_id"])
        assert a["area"] == int(mask.sum())
        rows, cols = np.nonzero(mask)
        assert a["bbox"] == [cols.min(), rows.min(), cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min()]
    g = client.get("/api/images/a.png/annotation")
    assert g.status_code == 200 and g.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(_decode(g.content), labels)
    assert client.get("/api/images/a.png/annotation?format=coco").json() == doc
    assert client.get("/api/images?details=1").json()[0]["annotated"] is True
    # nothing else was left in annotations/ (no temporaries)
    assert _files_under(folder / "annotations") == ["a.json", "a.png"]


def test_label_names_become_coco_categories(folder):
    with _client(folder, labels=["sky", "disk"]) as c:
        _, gt = _disk()
        c.put("/api/images/a.png/annotation", content=_png(gt))
        cats = c.get("/api/images/a.png/annotation?format=coco").json()["categories"]
        assert cats == [{"id": 1, "name": "sky"}, {"id": 2, "name": "disk"}]
        assert c.get("/api/config").json()["labels"] == ["sky", "disk"]


def test_scribbles_round_trip(client, folder):
    seeds = np.zeros((20, 25), np.uint8)
    seeds[3, 4:9] = 3
    assert client.get("/api/images/b.jpg/scribbles").status_code == 404
    assert client.put("/api/images/b.jpg/scribbles", content=_png(seeds)).status_code == 200
    np.testing.assert_array_equal(_decode(client.get("/api/images/b.jpg/scribbles").content), seeds)
    assert (folder / "annotations" / ".scribbles" / "b.png").exists()


def test_images_sharing_a_stem_get_their_own_files(folder):
    a, _ = _disk()
    cv2.imwrite(str(folder / "a.jpg"), a)
    ws = Workspace(folder, hierarchy_fn=hierarchy_of_image, workers="thread")
    try:
        assert ws.annotation_paths("a.png")[0].endswith(os.path.join("annotations", "a.png.png"))
        assert ws.annotation_paths("a.jpg")[0].endswith(os.path.join("annotations", "a.jpg.png"))
        assert ws.annotation_paths("b.jpg")[0].endswith(os.path.join("annotations", "b.png"))
    finally:
        ws.close()


# -- bad requests ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/images/nope.png/ucm2.npz", 404, "no image named 'nope.png'"),
        ("/api/images/notes.txt/image", 404, "no image named"),  # not an image
        ("/api/images/.hidden.png/image", 404, "no image named"),  # hidden files are not listed
        ("/api/images/sub/image", 404, "no image named"),  # a folder
        ("/api/images/sub%2Fdeep.png/image", 400, "is a path"),  # encoded '/'
        ("/api/images/..%2Fsecret.png/image", 400, "is a path"),  # encoded '..'
        ("/api/images/%2E%2E%2Fsecret.png/ucm2.npz", 400, "is a path"),  # all encoded
        ("/api/images/..%5Csecret.png/image", 400, "is a path"),  # backslash
        ("/api/images/%2Fetc%2Fpasswd/image", 400, "is a path"),  # absolute
        ("/api/images/a.png%00.txt/image", 400, "is a path"),  # NUL
        ("/api/images/a.png/annotation", 404, "no saved annotation"),
        ("/api/images/a.png/annotation?format=xml", 400, "'png' or 'coco'"),
        ("/api/images/a.png/nothing", 404, "no API endpoint"),
        ("/api/nothing", 404, "no API endpoint"),
    ],
)
def test_bad_get_requests_are_4xx_with_a_json_message(client, path, status, message):
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["error"] and r.json()["status"] == status


def test_raw_dot_dot_and_absolute_paths_never_leave_folder(folder):
    """Paths sent byte for byte to a real server (no client normalises '..' or decodes twice)."""
    import http.client

    import uvicorn

    app = create_app(folder, hierarchy_fn=hierarchy_of_image, workers="thread")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    try:
        t0 = time.monotonic()
        while not server.started:
            assert time.monotonic() - t0 < 20
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        for raw in ["/api/images/../secret.png/image", "/api/images/../../secret.png/image",
                    "/api/images//etc/passwd/image", "/api/images/%2e%2e/secret.png/image"]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", raw)
            resp = conn.getresponse()
            body = resp.read()
            assert 400 <= resp.status < 500, (raw, resp.status)
            assert "error" in json.loads(body), raw
            assert body != (folder.parent / "secret.png").read_bytes()
            conn.close()
        # decoded once by the server: '..%2Fsecret.png' is a name like any other, and unknown
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/images/..%252Fsecret.png/image")
        resp = conn.getresponse()
        assert resp.status == 404 and "no image named '..%2Fsecret.png'" in json.loads(resp.read())["error"]
        conn.close()
    finally:
        server.should_exit = True
        th.join(10)


def test_wrong_method_and_foreign_host_are_json_errors(client):
    r = client.delete("/api/images/a.png/annotation")
    assert r.status_code == 405 and "use GET, PUT" in r.json()["error"]
    assert r.headers["allow"] == "GET, PUT"
    assert client.put("/api/images/a.png/ucm2.npz", content=b"").status_code == 405
    r = client.get("/api/images", headers={"host": "evil.example:8765"})
    assert r.status_code == 400 and "Host header 'evil.example'" in r.json()["error"]
    assert client.get("/api/images", headers={"host": "localhost:8765"}).status_code == 200


def _bad_bodies():
    good = np.zeros((30, 40), np.uint8)
    good[1, 1] = 1
    jpeg = cv2.imencode(".jpg", np.zeros((30, 40), np.uint8))[1].tobytes()
    return [
        ("jpeg", jpeg, 415, "must be a PNG"),
        ("text", b"hello", 415, "must be a PNG"),
        ("empty", b"", 415, "must be a PNG"),
        ("truncated", _png(good)[:40], 400, "cannot be decoded"),
        ("other size", _png(np.ones((30, 41), np.uint8)), 400, "is 41x30 (WxH) but image 'a.png' is 40x30"),
        ("rgb", _png(np.ones((30, 40, 3), np.uint8)), 400, "single-channel"),
        ("too big", _png(good) + b"\0" * 5000, 413, "over the limit"),
    ]


@pytest.mark.parametrize(("what", "body", "status", "message"), _bad_bodies(),
                         ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("endpoint", [("post", "segment"), ("put", "annotation"), ("put", "scribbles")])
def test_bad_bodies_are_4xx_and_write_nothing(folder, endpoint, what, body, status, message):
    with _client(folder, max_body=4096) as c:
        _wait_ready(c, "a.png")
        method, ep = endpoint
        r = getattr(c, method)(f"/api/images/a.png/{ep}", content=body)
        assert r.status_code == status, r.text
        assert message in r.json()["error"]
    assert _files_under(folder / "annotations") == [os.path.join(".cache", "a.hierarchy_of_image.npz")]


def test_body_over_the_limit_without_content_length(folder):
    """A chunked body is cut off as soon as it passes the limit."""
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b"\x89PNG\r\n\x1a\n" + b"\0" * 1000

    with _client(folder, max_body=4096) as c:
        r = c.post("/api/images/a.png/segment", content=chunks())
        assert r.status_code == 413 and "over the limit" in r.json()["error"]


def test_empty_scribbles_are_a_400(client):
    _wait_ready(client, "a.png")
    r = client.post("/api/images/a.png/segment", content=_png(np.zeros((30, 40), np.uint8)))
    assert r.status_code == 400 and "no label" in r.json()["error"]


def test_a_failed_write_leaves_neither_file_nor_temporary(client, folder, monkeypatch):
    import pathlib

    _, gt = _disk()
    assert client.put("/api/images/a.png/annotation", content=_png(gt)).status_code == 200
    before = {p: (folder / "annotations" / p).read_bytes() for p in ("a.png", "a.json")}

    def disk_full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", disk_full)  # the JSON fails after the PNG
    r = client.put("/api/images/a.png/annotation", content=_png(3 - gt))
    assert r.status_code == 500 and "No space left" in r.json()["error"]
    # the previous annotation is intact, both halves, and no temporary is left behind
    assert {p: (folder / "annotations" / p).read_bytes() for p in ("a.png", "a.json")} == before
    assert _files_under(folder / "annotations") == ["a.json", "a.png"]


# -- the command line --------------------------------------------------------------------------------
def test_cli_defaults_and_errors(tmp_path, capsys):
    import argparse

    from bottomup.annotate import _cli

    parser = argparse.ArgumentParser(prog="bottomup")
    _cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["annotate", str(tmp_path)])
    assert (args.host, args.port, args.contours) == ("127.0.0.1", 8765, "auto")
    args = parser.parse_args(["annotate", str(tmp_path / "missing")])
    assert args.func(args) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_cli_serves_folder_and_prints_its_url(folder):
    """`bottomup annotate FOLDER --port 0` binds 127.0.0.1, prints the URL, answers the API."""
    import subprocess
    import sys
    import urllib.request

    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "bottomup", "annotate", str(folder), "--port", "0",
                             "--contours", "gpb"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        url = None
        t0 = time.monotonic()
        while url is None and time.monotonic() - t0 < 60:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("open http://"):
                url = line.split()[1]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/images", timeout=10) as resp:
            assert json.loads(resp.read()) == ["a.png", "b.jpg", "c.tif"]
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert b"bottomup annotate" in resp.read()
    finally:
        proc.terminate()
        proc.wait(20)
