"""The ``bottomup annotate`` page in real headless Chromium (Debian's ``chromium`` + ``chromium-driver``).

Draws two strokes with mouse events, waits for the segmentation to be drawn, saves, and checks that
the saved PNG equals :func:`bottomup.interactive.segment` on the same hierarchy and the same strokes
rasterised here in Python (independently of the page's JavaScript). Skips, with the reason, when
Chromium, its driver or Selenium is missing.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest
import scipy.ndimage as ndi

cv2 = pytest.importorskip("cv2")
pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")  # noqa: E501

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bottomup.annotate import create_app  # noqa: E402
from bottomup.interactive import hierarchy_of_image, segment  # noqa: E402
from bottomup.io import read_image  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("BOTTOMUP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("BOTTOMUP_CHROMEDRIVER") or shutil.which("chromedriver")
if not CHROMIUM or not DRIVER:
    pytest.skip(
        "headless Chromium test skipped: needs Debian's `chromium` and `chromium-driver` "
        "(apt-get install -y chromium chromium-driver); found chromium="
        f"{CHROMIUM}, chromedriver={DRIVER}",
        allow_module_level=True,
    )

H, W = 120, 160
PALETTE = {1: (230, 57, 70), 2: (69, 123, 235), 3: (82, 183, 96)}


def _scene():
    """Background, a disk and a rectangle, in three colours with a little noise."""
    rng = np.random.default_rng(0)
    rr, cc = np.mgrid[:H, :W]
    gt = np.ones((H, W), np.uint8)
    gt[(rr - 60) ** 2 + (cc - 50) ** 2 < 30**2] = 2
    gt[20:100, 105:145] = 3
    colours = np.array([[0, 0, 0], [60, 110, 170], [210, 80, 60], [90, 180, 90]], float)
    img = colours[gt] + rng.normal(0, 5, (H, W, 3))
    return np.clip(img, 0, 255).astype(np.uint8), gt


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("annotate_browser")
    img, gt = _scene()
    cv2.imwrite(str(folder / "scene.png"), img[..., ::-1])
    app = create_app(folder, hierarchy_fn=hierarchy_of_image, workers="thread")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    t0 = time.monotonic()
    while not server.started:
        assert time.monotonic() - t0 < 30, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield folder, f"http://127.0.0.1:{port}/", gt
    server.should_exit = True
    th.join(10)


@pytest.fixture(scope="module")
def browser():
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,760", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _js(driver, expr):
    return driver.execute_script(f"return {expr};")


def _wait(driver, expr, timeout=30):
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: _js(d, expr), message=expr)


def _settled(driver):
    _wait(driver, "window.annotate && annotate.ready && !annotate.segInFlight && !annotate.current")


def _stroke(driver, canvas, points):
    """Press, move through ``points`` (CSS pixels from the canvas' top-left corner), release."""
    rect = _js(driver, "document.getElementById('scribbles').getBoundingClientRect().toJSON()")
    cx, cy = rect["width"] / 2, rect["height"] / 2
    chain = ActionChains(driver, duration=10)
    x0, y0 = points[0]
    chain.move_to_element_with_offset(canvas, int(x0 - cx), int(y0 - cy)).click_and_hold()
    for (xa, ya), (xb, yb) in zip(points[:-1], points[1:], strict=True):
        chain.move_by_offset(int(xb - xa), int(yb - ya))
    chain.release().perform()


def _rasterise(strokes, shape):
    """The page's brush, written again from its definition: every pixel whose centre
    (col + 0.5, row + 0.5) is within ``radius`` of the stroke's polyline takes its label."""
    seeds = np.zeros(shape, np.uint8)
    qy, qx = np.mgrid[: shape[0], : shape[1]].astype(float) + 0.5
    for s in strokes:
        pts = [tuple(p) for p in s["points"]]
        segs = [(pts[0], pts[0])] + list(zip(pts[:-1], pts[1:], strict=True))
        for (ax, ay), (bx, by) in segs:
            dx, dy = bx - ax, by - ay
            len2 = dx * dx + dy * dy
            t = ((qx - ax) * dx + (qy - ay) * dy) / len2 if len2 > 0 else np.zeros(shape)
            t = np.clip(t, 0, 1)
            ex, ey = ax + t * dx - qx, ay + t * dy - qy
            seeds[ex * ex + ey * ey <= s["radius"] ** 2] = s["label"]
    return seeds


def _page_array(driver, name):
    return np.array(_js(driver, f"Array.from(annotate.{name})"), dtype=np.int64).reshape(H, W)


def _mask_pixels(driver):
    data = _js(driver, "Array.from(document.getElementById('mask').getContext('2d')"
                       f".getImageData(0, 0, {W}, {H}).data)")
    return np.array(data, np.uint8).reshape(H, W, 4)


def test_two_strokes_segment_save_and_reload(site, browser):
    folder, url, gt = site
    d = browser
    d.get(url + "#scene.png")
    _wait(d, "window.annotate && annotate.ready")
    assert _js(d, "annotate.W") == W
    scale = _js(d, "annotate.scale")  # small images are shown enlarged (at most 3x)
    assert 1 <= scale <= 3
    assert _js(d, "annotate.levels.length") > 2
    canvas = d.find_element(By.ID, "scribbles")
    # stroke 1: label 1 (the default), across the background at the top
    _stroke(d, canvas, [(x * scale, y * scale) for x, y in [(10, 8), (40, 9), (80, 8), (120, 10)]])
    _settled(d)
    # stroke 2: label 2 (key "2"), inside the disk
    d.find_element(By.TAG_NAME, "body").send_keys("2")
    _stroke(d, canvas, [(x * scale, y * scale) for x, y in [(40, 55), (50, 62), (60, 58)]])
    _settled(d)
    strokes = _js(d, "annotate.strokes")
    assert [s["label"] for s in strokes] == [1, 2] and len(strokes[0]["points"]) >= 4
    # where the mouse went (CSS px / scale = image px, within a pixel of rounding)
    assert abs(strokes[0]["points"][0][0] - 10) <= 1 and abs(strokes[1]["points"][-1][1] - 58) <= 1
    seeds = _rasterise(strokes, (H, W))
    np.testing.assert_array_equal(_page_array(d, "seeds"), seeds)

    # the segmentation is drawn: mask pixels carry the label colours, disk and background apart
    hierarchy = hierarchy_of_image(read_image(folder / "scene.png"))
    expected = segment(hierarchy, seeds)
    assert set(np.unique(expected)) == {1, 2}
    np.testing.assert_array_equal(_page_array(d, "labels"), expected)
    mask = _mask_pixels(d)
    for k in (1, 2):
        np.testing.assert_array_equal(mask[expected == k][:, :3],
                                      np.broadcast_to(PALETTE[k], ((expected == k).sum(), 3)))
    assert (mask[..., 3] == 255).all()
    assert _js(d, "annotate.segCount") >= 1

    # save (the button) -> FOLDER/annotations/scene.png equals segment() on the same strokes
    d.find_element(By.ID, "save").click()
    _wait(d, "annotate.saveCount === 1 && !annotate.dirty")
    saved = cv2.imread(str(folder / "annotations" / "scene.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(saved, expected)
    assert (folder / "annotations" / "scene.json").exists()

    # reload: the saved labels and scribbles come back
    d.refresh()
    _wait(d, "window.annotate && annotate.ready && annotate.segmented")
    np.testing.assert_array_equal(_page_array(d, "labels"), expected)
    np.testing.assert_array_equal(_page_array(d, "seeds"), seeds)


def test_undo_redo_and_region_click(site, browser):
    folder, url, gt = site
    d = browser
    d.get(url + "#scene.png")
    _wait(d, "window.annotate && annotate.ready && annotate.segmented")
    _settled(d)
    seeds = _page_array(d, "seeds")
    body = d.find_element(By.TAG_NAME, "body")
    # undo needs a change made in this page: a third stroke with label 3, then Ctrl+Z / Ctrl+Shift+Z
    body.send_keys("3")
    canvas = d.find_element(By.ID, "scribbles")
    scale = _js(d, "annotate.scale")
    _stroke(d, canvas, [(120 * scale, 40 * scale), (125 * scale, 60 * scale)])
    _settled(d)
    with_three = _page_array(d, "seeds")
    assert (with_three == 3).any()
    np.testing.assert_array_equal(with_three[with_three != 3], seeds[with_three != 3])
    ActionChains(d).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    _settled(d)
    _wait(d, "!annotate.segDirty")
    np.testing.assert_array_equal(_page_array(d, "seeds"), seeds)
    hierarchy = hierarchy_of_image(read_image(folder / "scene.png"))
    np.testing.assert_array_equal(_page_array(d, "labels"), segment(hierarchy, seeds))
    ActionChains(d).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("z").key_up(Keys.SHIFT) \
        .key_up(Keys.CONTROL).perform()
    _settled(d)
    np.testing.assert_array_equal(_page_array(d, "seeds"), with_three)

    # region tool (key R): a click fills the region of the cut at the slider's level
    level = _js(d, "annotate.level")
    body.send_keys("r")
    ActionChains(d).move_to_element_with_offset(canvas, int((125 - W / 2) * scale),
                                                int((95 - H / 2) * scale)).click().perform()
    _settled(d)
    after = _page_array(d, "seeds")
    ucm2 = hierarchy.to_ucm2()
    # the page compares float32 edge levels with the float32 level: do the same here
    region = ndi.label(ucm2.astype(np.float32) <= np.float32(level), np.ones((3, 3)))[0][1::2, 1::2]
    action = _js(d, "annotate.history[annotate.history.length - 1]")
    assert action["kind"] == "region" and abs(action["x"] - 125) <= 1 and abs(action["y"] - 95) <= 1
    clicked = region == region[int(action["y"]), int(action["x"])]
    assert (after[clicked] == 3).all()
    np.testing.assert_array_equal(after[~clicked], with_three[~clicked])
    np.testing.assert_array_equal(_page_array(d, "labels"), segment(hierarchy, after))
