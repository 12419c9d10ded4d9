"""The web app (web/) in a real browser: Debian's chromium driven by Playwright, the site built with
npm and served by `edgedigits web`'s server. Fixtures in tests/web_fixtures.py (registered by
conftest.py)."""

import csv
import gzip
import json
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from web_fixtures import CAMERA_PHOTO, b64, camera_frame, open_app, predict_in_browser, wait_ready

PHOTO = CAMERA_PHOTO
FIRST_LOAD_LIMIT = 8_000_000


def edgedigits(*args, **kw):
    return subprocess.run([sys.executable, "-m", "edgedigits.cli", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def python_reading(image):
    """The Python runtime's reading of a BGR image with the model the web app ships."""
    from edgedigits.models import shipped
    from edgedigits.runtime import Recognizer, read_page

    return read_page(image, Recognizer(shipped() / "model_int8.onnx", backend="onnxruntime"))


def true_lines(paper_dir: Path, name: str) -> list:
    with open(paper_dir / "labels.csv", newline="") as f:
        return next(r["lines"].split("|") for r in csv.DictReader(f) if r["filename"] == name)


def upload(page, path: Path) -> dict:
    """Pick a photo in the photo view as a user does; the reading the app shows."""
    page.click("#tabs button[data-view=photo]")
    page.evaluate("window.edgedigits.result = null")
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.edgedigits.result !== null || document.querySelector('#status.error')")
    assert "error" not in (page.get_attribute("#status", "class") or ""), page.inner_text("#status")
    return page.evaluate("(() => { const r = window.edgedigits.result; return {lines: r.lines, "
                         "digits: r.digits.map(({input28, ...d}) => d)}; })()")


# --- the command and the server (no browser) -----------------------------------------------------

def test_server_sends_gzip_siblings_mime_types_and_etags(web_site, web_server):
    url = web_server.url + "vendor/ort-wasm-simd-threaded.wasm"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})) as r:
        packed, headers = r.read(), r.headers
    assert headers["Content-Type"] == "application/wasm"
    assert headers["Content-Encoding"] == "gzip"
    raw = (web_site / "vendor" / "ort-wasm-simd-threaded.wasm").read_bytes()
    assert gzip.decompress(packed) == raw and len(packed) < len(raw) / 3
    with urllib.request.urlopen(url) as r:                         # no gzip asked: the plain file
        assert r.read() == raw and r.headers["Content-Encoding"] is None
    with urllib.request.urlopen(web_server.url + "vendor/ort.wasm.min.mjs") as r:
        assert r.headers["Content-Type"].startswith("text/javascript")
    with urllib.request.urlopen(web_server.url + "manifest.webmanifest") as r:
        assert r.headers["Content-Type"] == "application/manifest+json"
        manifest = json.loads(r.read())
    assert all((web_site / icon["src"]).is_file() for icon in manifest["icons"])
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})
    with pytest.raises(urllib.error.HTTPError) as e:                # unchanged: 304, no body
        urllib.request.urlopen(request)
    assert e.value.code == 304
    for bad in ("nothing-here.js", "../pyproject.toml", "%2e%2e/%2e%2e/README.md"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(web_server.url + bad)
        assert e.value.code == 404


def test_build_holds_the_model_tuning_and_a_hashed_precache_list(web_site):
    from edgedigits.models import shipped

    root = Path(__file__).resolve().parents[1]
    assert (web_site / "models" / "model_int8.onnx").read_bytes() == (shipped() / "model_int8.onnx").read_bytes()
    assert (web_site / "runtime" / "tuning.json").read_bytes() == (root / "runtime" / "tuning.json").read_bytes()
    build = json.loads((web_site / "build.json").read_text())
    sw = (web_site / "sw.js").read_text()
    assert f'const VERSION = "{build["version"]}"' in sw
    # every file the site has (but the service worker, build.json and the .gz copies) is precached
    files = {p.relative_to(web_site).as_posix() for p in web_site.rglob("*") if p.is_file()}
    assert set(build["files"]) == {f for f in files if not f.endswith(".gz")} - {"sw.js", "build.json"}
    for dep in ("vendor/opencv.js", "vendor/ort-wasm-simd-threaded.wasm", "runtime/recognizer.js", "app.js"):
        assert dep in build["files"]


def test_web_command_errors_are_one_line(tmp_path, web_server):
    taken = web_server.server_address[1]
    cases = [(["web", "--port", str(taken)], "is in use"),
             (["web", "--port", "70000"], "not a port number"),
             (["web", "--host", "no.such.host.invalid", "--port", "0"], "not an address"),
             (["web", "--build", str(Path(__file__))], "is a file"),
             (["web", "--build", str(Path(__file__).parent)], "not empty")]
    for args, message in cases:
        done = edgedigits(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)


def test_web_build_writes_the_site(tmp_path):
    out = tmp_path / "site"
    done = edgedigits("web", "--build", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "index.html").is_file() and (out / "vendor" / "opencv.js").is_file()
    assert (out / "models" / "model_int8.onnx").is_file()
    done = edgedigits("web", "--build", str(out))                  # a site written before: replaced
    assert done.returncode == 0, done.stderr


def test_samples_zip_reads_as_its_folder(tmp_path):
    """The format the web app downloads: the samples folder's files at the root of a zip."""
    from edgedigits.runtime.samples import SampleStore, read_samples

    store = SampleStore(tmp_path / "samples")
    rng = np.random.default_rng(0)
    for label in "3141":
        store.save(rng.random((28, 28), dtype=np.float32), rng.integers(0, 255, (40, 30, 3), dtype=np.uint8),
                   label, "m/onnx@0", source="corrected", predicted="7", prob=0.5)
    archive = tmp_path / "samples.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(store.root.iterdir()):
            z.write(f, f.name)
        z.writestr("../evil.png", b"x")                              # names outside the root: left out
    x1, y1, r1 = read_samples(store.root)
    x2, y2, r2 = read_samples(archive)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2) and r1 == r2 and len(y1) == 4
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("notes.txt", "no samples")
    done = edgedigits("finetune", "--samples", str(tmp_path / "empty.zip"), "--out", str(tmp_path / "ft"))
    assert done.returncode != 0 and "no index.jsonl in this zip" in done.stderr
    assert "Traceback" not in done.stderr


# --- in the browser --------------------------------------------------------------------------------

def test_classifier_parity_on_1000_mnist_digits(browser, web_server, mnist):
    """The browser's recognizer (onnxruntime-web, wasm, one thread) and onnxruntime in Python on the
    same int8 model: 100% argmax agreement on 1,000 MNIST test digits."""
    from edgedigits.models import shipped
    from edgedigits.runtime import Recognizer

    crops = mnist[2][:1000].astype(np.float32) / 255.0
    want = Recognizer(shipped() / "model_int8.onnx", backend="onnxruntime").predict(crops)
    context, page = open_app(browser, web_server)
    try:
        got = predict_in_browser(page, crops)
    finally:
        context.close()
    assert got.shape == want.shape == (1000, 11)
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    diff = float(np.abs(got - want).max())
    print(f"\nweb classifier parity: argmax agreement {agree:.1%} on 1000 MNIST test digits, "
          f"max |p_web - p_python| = {diff:.2e}")
    assert agree == 1.0
    assert diff < 1e-3


def test_first_load_size_repeat_visit_and_offline_reload(browser, web_server, paper_dir, tmp_path):
    """A new visitor (fresh context: empty HTTP cache, no service worker) transfers <= 8 MB, the
    model and wasm included, counted at the server (the page's requests and the service worker's
    install together) and by the page (CDP); a repeat visit loads from the service worker's cache;
    offline, the app still reads a photo."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        urls, seen = {}, []           # over the network only: opencv.js reads its wasm from a data: URL
        cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.loadingFinished", lambda e: seen.append(
            e["encodedDataLength"] if urls.get(e["requestId"], "").startswith("http") else 0))
        before = web_server.body_bytes
        page.goto(web_server.url)
        loaded = "window.edgedigits.modelReady.then(() => window.cv && typeof window.cv.then !== 'function')"
        page.wait_for_function(loaded)        # the model and OpenCV.js (the big files) are in
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        first_server, first_page = web_server.body_bytes - before, sum(seen)
        seen.clear()
        before = web_server.body_bytes
        page.reload()
        page.wait_for_function(loaded)
        repeat_server, repeat_page = web_server.body_bytes - before, sum(seen)
        print(f"\nfirst visit: {first_server / 1e6:.2f} MB sent by the server, {first_page / 1e6:.2f} MB "
              f"seen by the page; repeat visit: {repeat_server} bytes sent, {repeat_page} seen by the page")
        context.set_offline(True)
        page.reload()
        wait_ready(page)
        result = upload(page, paper_dir / PHOTO)
        page.screenshot(path=str(tmp_path / "offline.png"))
    finally:
        context.close()
    assert 5_000_000 < first_server <= FIRST_LOAD_LIMIT
    assert first_page <= FIRST_LOAD_LIMIT
    assert repeat_server < 50_000 and repeat_page < 50_000
    assert result["lines"] == true_lines(paper_dir, PHOTO)


def test_upload_reads_lines_like_python(web_page, paper_dir, tmp_path):
    import cv2

    path = paper_dir / PHOTO
    result = upload(web_page, path)
    web_page.screenshot(path=str(tmp_path / "photo.png"), full_page=True)
    want = python_reading(cv2.imread(str(path))).as_dict()
    assert result["lines"] == want["lines"] == true_lines(paper_dir, PHOTO)
    assert [d["box"] for d in result["digits"]] == [d["box"] for d in want["digits"]]
    assert web_page.inner_text("#photo-lines").split() == want["lines"]


def draw_strokes(page, strokes):
    """Draw polylines (pad coordinates, 0..280) on the drawing pad with the mouse."""
    box = page.locator("#pad").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=8)
        page.mouse.up()


DRAWN = {"1": [[(140, 50), (140, 230)]],
         "7": [[(80, 60), (200, 60), (120, 230)]],
         "0": [[(140, 50), (90, 90), (85, 170), (140, 230), (195, 170), (190, 90), (140, 50)]]}


def test_drawing_pad_reads_the_drawn_digit(app_page, tmp_path):
    """Digits drawn with the mouse, normalised by normalize.js as the page reader's crops are: the
    top of the 11 probabilities is the digit drawn."""
    web_page = app_page
    web_page.evaluate("Promise.all([window.edgedigits.cvReady, window.edgedigits.normalizeReady]).then(() => true)")
    web_page.click("#tabs button[data-view=draw]")
    for digit, strokes in DRAWN.items():
        web_page.click("#pad-clear")
        draw_strokes(web_page, strokes)
        out = web_page.evaluate("window.edgedigits.padResult")
        probs = np.asarray(out["probs"])
        web_page.screenshot(path=str(tmp_path / f"draw-{digit}.png"))
        assert len(probs) == 11 and abs(probs.sum() - 1) < 1e-4
        assert out["label"] == digit, (digit, probs.round(3))
        assert web_page.inner_text("#pad-answer") == digit
        assert web_page.locator("#probs li").count() == 11


def test_correction_is_saved_and_downloaded_for_finetune(web_page, paper_dir, tmp_path):
    from edgedigits.runtime.samples import read_samples, to_uint8

    result = upload(web_page, paper_dir / PHOTO)
    first = result["digits"][0]
    x, y, w, h = first["box"]
    corrected = "9" if first["label"] != "9" else "4"
    canvas = web_page.locator("#photo-canvas")
    size = web_page.evaluate("[document.querySelector('#photo-canvas').width, "
                             "document.querySelector('#photo-canvas').height]")
    box = canvas.bounding_box()
    canvas.click(position={"x": (x + w / 2) * box["width"] / size[0], "y": (y + h / 2) * box["height"] / size[1]})
    web_page.click(f"#correct-keys button[value='{corrected}']")
    web_page.wait_for_function("document.querySelector('#sample-count').textContent === '1'")
    shown = web_page.inner_text("#photo-lines").split()
    assert shown[first["line"]][0] == corrected
    input28 = np.asarray(web_page.evaluate(
        "window.edgedigits.result.digits[0].input28 && Array.from(window.edgedigits.result.digits[0].input28)"),
        np.float32).reshape(28, 28)
    web_page.click("#save-all")                  # every digit as shown, the corrected one again
    n = len(result["digits"])
    web_page.wait_for_function(f"document.querySelector('#sample-count').textContent === '{1 + n}'")
    web_page.click("#tabs button[data-view=samples]")
    web_page.screenshot(path=str(tmp_path / "samples.png"))
    with web_page.expect_download() as download:
        web_page.click("#samples-download")
    archive = tmp_path / "samples.zip"
    download.value.save_as(archive)
    images, labels, records = read_samples(archive)    # identical images: the last label saved
    with zipfile.ZipFile(archive) as z:
        assert len(z.read("index.jsonl").decode().splitlines()) == 1 + n
    shown = "".join(web_page.inner_text("#photo-lines").split())
    assert len(labels) == n and "".join(map(str, labels.tolist())) == shown
    assert [r["source"] for r in records].count("corrected") == 1
    record = next(r for r in records if r["source"] == "corrected")
    assert np.array_equal(images[records.index(record)], to_uint8(input28))
    assert record["label"] == corrected and record["predicted"] == first["label"]
    assert record["box"] == first["box"] and record["model_id"].startswith("edgedigits-cnn/onnx_int8@")
    # `edgedigits finetune --samples FILE.zip` takes the file as it is: its own reader (which also
    # checks there are enough samples to fine-tune on)
    from edgedigits.export.finetune import read_samples as finetune_reads

    x, y, _ = finetune_reads(archive)
    assert np.array_equal(x, images) and np.array_equal(y, labels)


def test_camera_shows_the_lines_of_the_sheet(web_page, paper_dir, tmp_path):
    """Chromium's fake camera plays the paper photo at 640x480: the camera view shows its lines,
    read (after the first frame) with the page's measurement reused, as the Python loop does."""
    want = python_reading(camera_frame(paper_dir)).lines
    web_page.click("#tabs button[data-view=camera]")
    web_page.click("#camera-toggle")
    web_page.wait_for_function("window.edgedigits.camera.frames >= 3")
    reused = web_page.evaluate("[window.edgedigits.camera.sinceMeasured, window.edgedigits.camera.measured]")
    assert reused[0] >= 1 and reused[1]["height"] > 0, reused
    shown = web_page.inner_text("#camera-lines").split()
    web_page.screenshot(path=str(tmp_path / "camera.png"))
    fps = web_page.evaluate("window.edgedigits.camera.fps")
    print(f"\ncamera view: {fps:.1f} FPS (loaded test machine), lines {shown}")
    assert shown == want == true_lines(paper_dir, PHOTO)


def test_bench_web_reports_both_readers_the_camera_and_the_load(web_site, paper_dir):
    """`edgedigits bench-web`: the same 1 MP photo read by Python and by the browser, camera FPS,
    first/repeat load bytes (a short run: the figures in docs/web.md come from the default one)."""
    done = edgedigits("bench-web", str(paper_dir / PHOTO), "--site", str(web_site), "--repeat", "2",
                      "--seconds", "1.5", "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert abs(figures["size"][0] * figures["size"][1] - 1e6) < 2e4
    assert figures["python_ms"] > 0 and figures["browser_ms"] > 0
    assert figures["ratio"] == pytest.approx(figures["browser_ms"] / figures["python_ms"], rel=0.02)
    assert figures["camera_frames"] > 0 and figures["camera_fps"] > 0
    assert figures["camera_lines"] == figures["python_lines"] == true_lines(paper_dir, PHOTO)
    assert 0 < figures["first_load_bytes"] <= FIRST_LOAD_LIMIT and figures["repeat_visit_bytes"] < 50_000
    done = edgedigits("bench-web", str(paper_dir / PHOTO), "--site", str(paper_dir))
    assert done.returncode == 2 and "not a built site" in done.stderr


def test_upload_honours_exif_orientation(web_page, paper_dir, tmp_path):
    """A phone photo stored on its side with an EXIF orientation tag: the browser turns it upright
    (createImageBitmap, imageOrientation "from-image") as OpenCV does in Python; same lines."""
    import cv2
    from PIL import Image

    upright = cv2.imread(str(paper_dir / PHOTO))
    sideways = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)   # tag 6: turn 90 clockwise to view
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    Image.fromarray(cv2.cvtColor(sideways, cv2.COLOR_BGR2RGB)).save(path, quality=95, exif=exif)
    python = python_reading(cv2.imread(str(path))).lines
    result = upload(web_page, path)
    assert result["lines"] == python == true_lines(paper_dir, PHOTO)


def test_drag_and_drop_reads_the_photo(web_page, paper_dir):
    """A photo dropped on the drop zone is read like a picked one."""
    path = paper_dir / "lucksoft_567891.jpg"
    web_page.evaluate("window.edgedigits.result = null")
    transfer = web_page.evaluate_handle(
        "(b) => { const t = new DataTransfer(); t.items.add(new File([Uint8Array.from(atob(b), c => c.charCodeAt(0))], "
        "'photo.jpg', {type: 'image/jpeg'})); return t; }", b64(path.read_bytes()))
    web_page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    web_page.wait_for_function("window.edgedigits.result !== null")
    assert web_page.inner_text("#photo-lines").split() == true_lines(paper_dir, path.name)
    # a file that is not an image: a one-line message in the status line, the app still works
    web_page.set_input_files("#file", files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a jpeg"}])
    web_page.wait_for_function("document.querySelector('#status').classList.contains('error')")
    assert "not an image this browser can decode" in web_page.inner_text("#status")
    assert web_page.errors == []
