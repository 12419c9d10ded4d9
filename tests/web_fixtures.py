"""Fixtures for the web app's browser tests (tests/test_web*.py): the site built once per session
into a temporary folder, served by `edgedigits web`'s server in a thread, Debian's chromium driven
by Playwright for Python, with a fake camera fed a video made from a paper photo.

The fixtures (web_site, web_server, camera_video, browser, web_page, app_page) are registered once
for the session by tests/conftest.py; a test module imports only the helpers:

    from web_fixtures import read_in_browser     # (tests/ is on sys.path under pytest)

    def test_something(web_page):   # a fresh browser context on the app, the reader loaded
        read_in_browser(web_page, path)

CI sets EDGEDIGITS_REQUIRE_WEB=1 (.ci/run): a missing chromium, npm or Playwright then fails these
tests instead of skipping them.
"""

import base64
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

# what `from web_fixtures import *` gives: the helpers, never the fixtures (see conftest.py)
__all__ = ["ROOT", "WEB", "CHROMIUM", "REQUIRE_WEB", "CAMERA_PHOTO", "CAMERA_SIZE", "PHONE", "missing",
           "write_y4m", "camera_frame", "open_app", "wait_ready", "b64", "read_in_browser",
           "predict_in_browser"]

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
CHROMIUM = os.environ.get("EDGEDIGITS_CHROMIUM", "/usr/bin/chromium")
REQUIRE_WEB = os.environ.get("EDGEDIGITS_REQUIRE_WEB", "") not in ("", "0")
CAMERA_PHOTO = "hypjudy_photo_0.png"      # a sheet on a desk, 922x692; read as 1247673 | 8952481
CAMERA_SIZE = (640, 480)
READY_MS = 120_000
PHONE = {"width": 412, "height": 915}     # a phone screen (CSS pixels): the app must fit it


def missing(what: str):
    if REQUIRE_WEB:
        pytest.fail(f"{what} (EDGEDIGITS_REQUIRE_WEB is set)", pytrace=False)
    pytest.skip(what)


def write_y4m(path: Path, bgr: np.ndarray, frames: int = 30, fps: int = 30) -> Path:
    """A y4m video (4:2:0, what Chromium's fake camera reads) of `frames` copies of one BGR image."""
    import cv2

    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes()      # Y plane, then U, then V
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + i420)
    return path


def camera_frame(paper_dir: Path) -> np.ndarray:
    """The camera's picture: the paper photo at 640x480, through 4:2:0 as the fake camera sends it."""
    import cv2

    image = cv2.resize(cv2.imread(str(paper_dir / CAMERA_PHOTO)), CAMERA_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420)


@pytest.fixture(scope="session")
def web_site(tmp_path_factory) -> Path:
    """The site built by `npm run build` into a temporary folder (`npm ci` first if web/node_modules
    is missing: `make web` does it)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing("node/npm not installed (apt-get install nodejs npm)")
    if not (WEB / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=WEB, check=True,
                       capture_output=True)
    out = tmp_path_factory.mktemp("web") / "site"
    done = subprocess.run(["node", "build.mjs", str(out)], cwd=WEB, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def web_server(web_site):
    """`edgedigits web`'s server on a free port of 127.0.0.1, answering in a thread."""
    from edgedigits.runtime.web import start_server

    server = start_server(web_site, "127.0.0.1", 0)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def camera_video(tmp_path_factory, paper_dir) -> Path:
    return write_y4m(tmp_path_factory.mktemp("camera") / "paper.y4m", camera_frame(paper_dir))


@pytest.fixture(scope="session")
def browser(camera_video):
    """Debian's chromium (headless, one browser for the session) with a fake camera playing
    `camera_video` and camera permission granted."""
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        missing("playwright not installed (pip install 'edgedigits[web]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_video}"])
        yield b
        b.close()


def open_app(browser, server, **context_args):
    """(context, page) on the app in a fresh browser context (its own storage and service worker);
    the classifier loaded (the page reader may still be loading)."""
    context = browser.new_context(accept_downloads=True, viewport=PHONE, device_scale_factor=2,
                                  **context_args)
    page = context.new_page()
    page.set_default_timeout(READY_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.evaluate("window.edgedigits.modelReady.then(() => true)")
    page.errors = errors
    return context, page


def wait_ready(page):
    """Wait until the whole reader (OpenCV.js, the model, page.js, normalize.js) has loaded; a load
    failure fails the test with the app's own message."""
    page.evaluate("window.edgedigits.ready.then(() => true)")


@pytest.fixture
def web_page(browser, web_server):
    """A fresh browser context on the app, the whole reader loaded."""
    context, page = open_app(browser, web_server)
    wait_ready(page)
    yield page
    context.close()


@pytest.fixture
def app_page(browser, web_server):
    """A fresh browser context on the app, the classifier loaded (wait for the rest as needed:
    `page.evaluate("window.edgedigits.normalizeReady.then(() => true)")`)."""
    context, page = open_app(browser, web_server)
    yield page
    context.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def read_in_browser(page, path: Path, inputs: bool = False) -> dict:
    """The browser's reading of an image file (page.js through the app), as Python's as_dict, plus
    each digit's input28 when `inputs`."""
    kind = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return page.evaluate("([b, t, i]) => window.edgedigits.readBase64(b, {type: t, inputs: i})",
                         [b64(path.read_bytes()), kind, inputs])


def predict_in_browser(page, crops: np.ndarray) -> np.ndarray:
    """The browser recognizer's probabilities [N, C] for float32 crops [N, 28, 28]."""
    crops = np.ascontiguousarray(crops, dtype=np.float32)
    out = page.evaluate("(b) => window.edgedigits.predictBase64(b)", b64(crops.tobytes()))
    return np.asarray(out, np.float32).reshape(len(crops), -1)
