"""`edgedigits bench-web`: the web app against the Python runtime, in the same run.

One photo is scaled to SIZE x SIZE pixels in area (1 MP by default, as `bench-runtime`) and read
  - by the Python runtime (one thread, the shipped int8 ONNX model on onnxruntime), and
  - by the web app in headless Chromium (onnxruntime-web on wasm, one thread; the same model),
    the same pixels (sent as PNG, decoding not timed);
both medians are printed with their ratio (target: at most 3x). Then the app's camera view runs on
Chromium's fake camera playing the photo at 640x480 for a few seconds: frames read per second
(target: at least 15), and the bytes a first visit and a repeat visit (service worker) transfer.

Needs Debian's chromium (or --chromium PATH), Playwright for Python (`edgedigits[web]`) and the
built site (`edgedigits web` builds it).
"""

import json
import statistics
import tempfile
import time
from pathlib import Path

from edgedigits.common import display_path, positive_int
from edgedigits.errors import EdgeDigitsError


def register(sub) -> None:
    p = sub.add_parser("bench-web", help="time the web app in headless Chromium against the Python runtime",
                       description=__doc__.splitlines()[0] + " A photo read by both (1 MP), the camera "
                                   "view's frames per second at 640x480, first and repeat load sizes.")
    p.add_argument("image", type=Path, metavar="IMAGE", help="a photo of a sheet")
    p.add_argument("--size", type=positive_int, default=1000, help="scale to this many pixels squared (1000)")
    p.add_argument("--repeat", type=positive_int, default=10, help="timed reads on each side (median reported)")
    p.add_argument("--seconds", type=float, default=6.0, help="how long the camera view runs (6)")
    p.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"), help="the browser (/usr/bin/chromium)")
    p.add_argument("--site", type=Path, metavar="DIR",
                   help="a built site to serve (default: web/dist, built when missing or stale)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=bench_web)


def scaled(image, size: int):
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    s = size / np.sqrt(h * w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def python_times(image, repeat: int):
    """(median ms, lines) of the Python runtime reading `image` on one thread."""
    import cv2

    from edgedigits.models import shipped
    from edgedigits.runtime import Recognizer, read_page

    cv2.setNumThreads(1)
    rec = Recognizer(shipped() / "model_int8.onnx", threads=1, backend="onnxruntime")
    for _ in range(2):
        result = read_page(image, rec)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        read_page(image, rec)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result.lines


def camera_y4m(image, folder: Path) -> Path:
    import cv2

    frame = cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)
    path = folder / "camera.y4m"
    i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for _ in range(30):
            f.write(b"FRAME\n" + i420)
    return path


def browser_figures(site: Path, png: bytes, y4m: Path, chromium: Path, repeat: int, seconds: float) -> dict:
    import base64

    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from edgedigits.runtime.web import start_server

    server = start_server(site, "127.0.0.1", 0)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=[
                "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={y4m}"])
            try:
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(180_000)
                before = server.body_bytes
                page.goto(server.url)
                page.evaluate("window.edgedigits.ready.then(() => true)")
                page.evaluate("navigator.serviceWorker.ready.then(() => true)")
                first = server.body_bytes - before
                before = server.body_bytes
                page.reload()
                page.evaluate("window.edgedigits.ready.then(() => true)")
                repeat_visit = server.body_bytes - before
                bench = page.evaluate("([b, n]) => window.edgedigits.benchBase64(b, n, {type: 'image/png'})",
                                      [base64.b64encode(png).decode(), repeat])
                page.click("#tabs button[data-view=camera]")
                page.click("#camera-toggle")
                page.wait_for_function("window.edgedigits.camera.frames >= 3")
                page.evaluate("(() => { const c = window.edgedigits.camera; c.frames = 0; c.ms = [];"
                              " c.since = performance.now(); })()")
                time.sleep(seconds)
                camera = page.evaluate("(() => { const c = window.edgedigits.camera; return {fps: c.fps, "
                                       "frames: c.frames, ms: c.ms, lines: window.edgedigits.result.lines}; })()")
            except PlaywrightError as e:
                raise EdgeDigitsError(f"the browser: {str(e).splitlines()[0]}") from None
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return {"read_ms": statistics.median(bench["times"]), "size": [bench["width"], bench["height"]],
            "camera_fps": camera["fps"], "camera_frames": camera["frames"],
            "camera_ms": statistics.median(camera["ms"]) if camera["ms"] else None,
            "camera_lines": camera["lines"], "first_load_bytes": first, "repeat_visit_bytes": repeat_visit}


def bench_web(args) -> int:
    import cv2

    from edgedigits.runtime import load_image
    from edgedigits.runtime.web import ensure_built, is_built

    if args.site is not None and not is_built(args.site):
        raise EdgeDigitsError(f"--site {display_path(args.site)}: not a built site (no build.json and "
                              "index.html); write one with `edgedigits web --build DIR`")
    if not args.chromium.exists():
        raise EdgeDigitsError(f"{display_path(args.chromium)}: no such browser (apt-get install chromium, "
                              "or pass --chromium PATH)")
    image = scaled(load_image(args.image), args.size)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise EdgeDigitsError(f"{display_path(args.image)}: could not encode it as PNG")
    site = args.site or ensure_built()
    python_ms, lines = python_times(image, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        web = browser_figures(site, png.tobytes(), camera_y4m(image, Path(tmp)), args.chromium, args.repeat, args.seconds)
    figures = {"image": display_path(args.image), "size": [image.shape[1], image.shape[0]],
               "python_ms": round(python_ms, 1), "browser_ms": round(web["read_ms"], 1),
               "ratio": round(web["read_ms"] / python_ms, 2), "python_lines": lines,
               **{k: v for k, v in web.items() if k not in ("read_ms", "size")}}
    if args.json:
        print(json.dumps(figures))
        return 0
    w, h = figures["size"]
    print(f"{figures['image']} at {w}x{h} ({w * h / 1e6:.2f} MP), median of {args.repeat} reads, one thread")
    print(f"  python runtime   {figures['python_ms']:8.1f} ms")
    print(f"  browser (wasm)   {figures['browser_ms']:8.1f} ms   {figures['ratio']:.2f}x python (target <= 3x)")
    cam_ms = f", {web['camera_ms']:.1f} ms a frame" if web["camera_ms"] else ""
    print(f"  camera 640x480   {web['camera_fps']:8.1f} FPS over {web['camera_frames']} frames{cam_ms} "
          f"(target >= 15); lines {' | '.join(web['camera_lines'])}")
    print(f"  first load       {web['first_load_bytes'] / 1e6:8.2f} MB transferred (target <= 8 MB); "
          f"repeat visit {web['repeat_visit_bytes'] / 1e3:.1f} kB")
    return 0
