"""Make ``docs/annotate.png``: the annotate page on a BSDS val image, after four strokes.

    BOTTOMUP_DATA=... python docs/annotate_screenshot.py [--image 126007] [--out docs/annotate.png]

Starts the real server on a temporary folder holding the image (hierarchy from the default
contours: learned when torch is installed), opens it in headless Chromium (Debian's ``chromium``
and ``chromium-driver``), draws one stroke per object with mouse events, waits for the
segmentation, and saves a screenshot of the window.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# strokes of 126007 (sky, mountains, church, roof, tree): label, points in image pixels (x = col, y = row)
STROKES = {
    "126007": [
        (1, [(20, 40), (150, 30), (280, 60), (330, 75)]),  # sky
        (2, [(70, 205), (130, 185), (200, 162), (238, 148)]),  # mountains and forest
        (2, [(30, 265), (150, 245), (220, 285)]),
        (2, [(395, 140), (440, 160), (468, 195)]),
        (2, [(330, 118), (342, 140)]),
        (3, [(275, 165), (280, 230), (288, 290)]),  # church
        (3, [(360, 205), (362, 235)]),
        (4, [(350, 278), (420, 265), (470, 262)]),  # roof
        (5, [(425, 25), (462, 60)]),  # tree
    ],
}


def main(argv=None) -> int:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from bottomup.annotate import create_app

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="126007", choices=sorted(STROKES))
    ap.add_argument("--out", default=str(ROOT / "docs" / "annotate.png"))
    ap.add_argument("--contours", default="auto", choices=("auto", "learned", "gpb"))
    ap.add_argument("--data", default=os.environ.get("BOTTOMUP_DATA"))
    args = ap.parse_args(argv)
    src = Path(args.data) / "bsds500" / "data" / "images" / "val"
    top = Path(tempfile.mkdtemp(prefix="annotate_shot_"))
    tmp = top / "bsds500-val"
    tmp.mkdir()
    for name in [f"{args.image}.jpg", "106024.jpg", "108005.jpg", "147091.jpg"]:
        shutil.copy(src / name, tmp / name)

    app = create_app(tmp, contours=args.contours, workers="thread")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]

    opts = Options()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--force-device-scale-factor=1", "--hide-scrollbars"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        d.get(f"http://127.0.0.1:{port}/#{args.image}.jpg")
        js = d.execute_script
        WebDriverWait(d, 600, 0.2).until(lambda d: js("return window.annotate && annotate.ready"))
        scale = js("return annotate.scale")
        rect = js("return document.getElementById('scribbles').getBoundingClientRect().toJSON()")
        canvas = d.find_element(By.ID, "scribbles")
        body = d.find_element(By.TAG_NAME, "body")
        for label, pts in STROKES[args.image]:
            body.send_keys(str(label))
            css = [(x * scale - rect["width"] / 2, y * scale - rect["height"] / 2) for x, y in pts]
            chain = ActionChains(d, duration=20)
            chain.move_to_element_with_offset(canvas, int(css[0][0]), int(css[0][1])).click_and_hold()
            for (xa, ya), (xb, yb) in zip(css[:-1], css[1:], strict=True):
                chain.move_by_offset(int(xb - xa), int(yb - ya))
            chain.release().perform()
            WebDriverWait(d, 60, 0.05).until(lambda d: d.execute_script("return !annotate.segInFlight"))
        body.send_keys("1")
        # leave the cursor over the image, as a person would
        ActionChains(d).move_to_element_with_offset(canvas, int(120 * scale - rect["width"] / 2),
                                                    int(200 * scale - rect["height"] / 2)).perform()
        time.sleep(0.3)
        d.save_screenshot(args.out)
        print(f"wrote {args.out} (hierarchy: {app.state.workspace.tag} contours, "
              f"{d.execute_script('return annotate.levels.length') - 1} levels)")
    finally:
        d.quit()
        server.should_exit = True
        th.join(10)
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
