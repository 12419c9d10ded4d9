"""The camera demo on real data: a video made from the real paper photos, the http view over
loopback, sample saves killed part way, lost cameras, dropped frames. Budget: about 15 s
(2 cores, quiet machine)."""

import csv
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedigits.camera_demo.demo import Command, NoneView, Session, handle, run
from edgedigits.camera_demo.http_view import HttpView
from edgedigits.runtime.samples import INDEX, SampleStore, read_index, to_uint8
from edgedigits.camera_demo.sources import Frame, LatestFrame, Live, Stills, VideoFile
from edgedigits.camera_demo.stabilize import Stabilizer
from edgedigits.runtime import Recognizer, load_image, read_page
from edgedigits.runtime.evaluate import edit_distance

ROOT = Path(__file__).resolve().parents[1]
FRAME_SIZE = (640, 480)
REPEAT = 10          # frames per photo in the test video: more than the 8 frames of votes


def letterbox(image, size=FRAME_SIZE):
    """Fit a photo into a camera-sized frame, padded with the colour of its own border."""
    w, h = size
    s = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(image, (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s))),
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    out = np.empty((h, w, 3), np.uint8)
    out[:] = np.median(border, axis=0)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def char_accuracy(readings, truths) -> float:
    """1 - (edit distance / length), over all photos, lines joined with '|'."""
    errors = sum(edit_distance("|".join(r), "|".join(t)) for r, t in zip(readings, truths))
    return 1 - errors / sum(len("|".join(t)) for t in truths)


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer()          # the shipped model, as `edgedigits camera` uses it


@pytest.fixture(scope="module")
def photos(paper_dir):
    """[(file name, letterboxed 640x480 frame, true lines)] for the 15 real photos."""
    with open(paper_dir / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [(r["filename"], letterbox(load_image(paper_dir / r["filename"])), r["lines"].split("|"))
            for r in rows]


@pytest.fixture(scope="module")
def paper_video(photos, tmp_path_factory):
    """An MJPG .avi built here: each photo held for REPEAT frames, like a camera over each sheet."""
    path = tmp_path_factory.mktemp("video") / "paper.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, FRAME_SIZE)
    assert writer.isOpened()
    for _, frame, _ in photos:
        for _ in range(REPEAT):
            writer.write(frame)
    writer.release()
    return path


def decoded_frames(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            return frames
        frames.append(image)


def test_loop_over_paper_video_reads_as_well_as_read_page(paper_video, photos, recognizer):
    printed = []
    summary = run(VideoFile(paper_video), recognizer, NoneView(printed.append))
    assert summary.reason == "end of the video"
    assert summary.frames == len(photos) * REPEAT and summary.dropped == 0
    assert printed and len(printed) == len(summary.readings)

    frames = decoded_frames(paper_video)
    camera, direct, truths = [], [], []
    for i, (_, _, truth) in enumerate(photos):
        last = (i + 1) * REPEAT - 1            # the reading once the votes are all of this photo
        camera.append(summary.lines_at(last))
        direct.append(read_page(frames[last], recognizer).lines)
        truths.append(truth)
    # the stable reading of every photo is exactly what read_page reads on that frame ...
    assert camera == direct
    # ... so it matches the labels exactly as well, and about as well as the uncompressed photo
    acc_camera = char_accuracy(camera, truths)
    acc_original = char_accuracy([read_page(p, recognizer).lines for _, p, _ in photos], truths)
    assert acc_camera == char_accuracy(direct, truths)
    assert acc_camera >= acc_original - 0.03, (acc_camera, acc_original)
    assert acc_camera > 0.5          # a floor far below the runtime's own score: real digits read


def test_cli_camera_headless_exits_cleanly_without_torch(paper_video, tmp_path):
    code = ("import sys; from edgedigits.cli import main; rc = main(sys.argv[1:]); "
            "heavy = [m for m in ('torch', 'tensorflow', 'litert_torch', 'onnx2tf') if m in sys.modules]; "
            "print('HEAVY', heavy); sys.exit(rc)")
    out = tmp_path / "annotated.mp4"
    r = subprocess.run([sys.executable, "-c", code, "camera", "--source", paper_video, "--view", "none",
                        "--max-frames", "25", "--record", out],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    assert "stopped after 25 frames" in r.stdout and "FPS" in r.stdout
    readings = [ln for ln in r.stdout.splitlines() if ln.startswith("frame ")]
    assert readings and "|" in readings[0]
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 25
    assert not list(tmp_path.glob(".*part*")), "the temporary recording was not renamed"


def camera_error(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "edgedigits.cli", "camera", "--view", "none", *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_no_camera_and_bad_sources_give_one_line_errors(tmp_path):
    err = camera_error("--source", "7")
    assert "no camera at index 7" in err and "tried backends" in err and "--source" in err
    (tmp_path / "clip.mp4").write_bytes(b"not a video at all")
    assert "cannot open it as a video" in camera_error("--source", tmp_path / "clip.mp4")
    assert "no such file or folder" in camera_error("--source", tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    assert "no images here" in camera_error("--source", tmp_path / "empty")
    assert "--remeasure must be 0 or more" in camera_error("--source", "7", "--remeasure", "-1")


def test_window_view_on_headless_opencv_says_use_http(photos, tmp_path):
    from edgedigits.camera_demo.demo import gui_available

    if gui_available():
        pytest.skip("this OpenCV has a GUI")
    image = tmp_path / "page.png"
    cv2.imwrite(str(image), photos[0][1])
    r = subprocess.run([sys.executable, "-m", "edgedigits.cli", "camera", "--source", image, "--view", "window"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no GUI" in r.stderr and "--view http" in r.stderr, r.stderr


# --- http -------------------------------------------------------------------------------------

def mjpeg_frames(url: str, n: int):
    """Read n JPEG parts of a multipart/x-mixed-replace stream and decode them."""
    with urllib.request.urlopen(url, timeout=10) as r:
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("multipart/x-mixed-replace")
        boundary = ctype.split("boundary=")[1].encode()
        frames = []
        while len(frames) < n:
            line = r.readline()
            if line.strip() != b"--" + boundary:
                continue
            headers = {}
            while (line := r.readline().strip()):
                k, v = line.decode().split(":", 1)
                headers[k.lower()] = v.strip()
            assert headers["content-type"] == "image/jpeg"
            data = r.read(int(headers["content-length"]))
            frames.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
        return frames


def post(url: str, **form):
    data = urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_view_streams_mjpeg_and_buttons_save_and_correct(photos, recognizer, tmp_path):
    name, frame, _ = photos[0]
    image_path = tmp_path / name
    cv2.imwrite(str(image_path), frame)
    view = HttpView("127.0.0.1", 0)
    store = SampleStore(tmp_path / "samples")
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        summary=run(Stills([image_path], hold=True), recognizer, view, store=store)))
    thread.start()
    try:
        url = view.url
        assert url.startswith("http://localhost:")
        with urllib.request.urlopen(url, timeout=10) as r:
            assert b"/stream.mjpg" in r.read()
        frames = mjpeg_frames(url + "stream.mjpg", 2)   # the 2nd is the keep-alive of a held image
        assert all(f is not None and f.shape == frame.shape for f in frames)
        assert np.abs(frames[0].astype(int) - frame).mean() > 1    # boxes and HUD drawn on it

        expected = read_page(cv2.imread(str(image_path)), recognizer)
        with urllib.request.urlopen(url + "state.json", timeout=10) as r:
            state = json.loads(r.read())
        assert state["lines"] == expected.lines and len(state["digits"]) == len(expected.digits)

        status, answer = post(url + "save")
        assert status == 200 and answer["message"].startswith(f"saved {len(expected.digits)} samples")
        wrong = "1" if state["digits"][0]["label"] != "1" else "7"
        status, answer = post(url + "correct", index=0, label=wrong)
        assert status == 200 and "correction" in answer["message"]
        assert post(url + "correct", index=999, label="3")[1]["message"].startswith("no digit #999")
        assert post(url + "correct", index="x")[0] == 400
        assert post(url + "quit")[0] == 200
    finally:
        thread.join(timeout=20)
    assert not thread.is_alive() and result["summary"].reason == "quit"

    records = read_index(store.root)
    assert len(records) == len(expected.digits) + 1
    assert [r["label"] for r in records[:-1]] == [d["label"] for d in state["digits"]]
    assert records[-1]["source"] == "corrected" and records[-1]["label"] == wrong
    assert all(r["model_id"] == recognizer.model_id and r["time"].endswith("Z") for r in records)
    first = cv2.imread(str(store.root / records[0]["input"]), cv2.IMREAD_GRAYSCALE)
    assert first.shape == (28, 28) and np.array_equal(first, to_uint8(expected.digits[0].crop28))


# --- samples: atomic saves ----------------------------------------------------------------------

SAVER = r"""
import os, sys, time
import numpy as np
from edgedigits.runtime import samples
store = samples.SampleStore(sys.argv[1])
crop28 = np.load(sys.argv[2]); crop = np.load(sys.argv[3])
stop_at = int(sys.argv[4])            # -1: save forever; k: freeze inside the k-th save
real_replace, calls = os.replace, [0]
def replace(src, dst):
    real_replace(src, dst)
    calls[0] += 1
    if stop_at >= 0 and calls[0] == 2 * stop_at + 1:   # the k-th sample's first PNG is in place
        print("MID", flush=True); time.sleep(60)
samples.os.replace = replace
print("READY", flush=True)
i = 0
while True:
    store.save(crop28, crop, str(i % 10), "test/model@0", frame=i)
    i += 1
"""


def check_store(root: Path):
    """Every index line parses and names complete PNGs; return the records."""
    text = (root / INDEX).read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    for r in records:
        assert cv2.imread(str(root / r["input"]), cv2.IMREAD_GRAYSCALE).shape == (28, 28)
        assert cv2.imread(str(root / r["crop"])) is not None
    return records


@pytest.fixture(scope="module")
def real_digit(photos, recognizer):
    return read_page(photos[-1][1], recognizer).digits[0]


def readline(p, timeout: float = 60.0) -> str:
    """The child's next line, or fail (never hang) if it does not come."""
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    if not ready:
        p.kill()
        pytest.fail("the saving process did not report")
    return p.stdout.readline().strip()


def saver(tmp_path, digit, stop_at):
    np.save(tmp_path / "c28.npy", digit.crop28)
    np.save(tmp_path / "crop.npy", digit.crop)
    return subprocess.Popen([sys.executable, "-c", SAVER, tmp_path / "samples", tmp_path / "c28.npy",
                             tmp_path / "crop.npy", str(stop_at)], stdout=subprocess.PIPE, text=True)


def test_sample_save_killed_part_way_leaves_no_partial_sample(tmp_path, real_digit):
    # frozen inside the 3rd save, after its first PNG was renamed into place: SIGKILL
    p = saver(tmp_path, real_digit, 3)
    assert readline(p) == "READY"
    assert readline(p) == "MID"
    p.send_signal(signal.SIGKILL)
    p.wait()
    root = tmp_path / "samples"
    records = check_store(root)
    assert len(records) == 3 and [r["label"] for r in records] == ["0", "1", "2"]
    named = {r[k] for r in records for k in ("input", "crop")}
    orphans = [f.name for f in root.glob("*.png") if f.name not in named]
    assert len(orphans) == 1 and orphans[0].endswith("-28.png")    # complete, but no sample
    assert len(read_index(root)) == 3

    # killed at random moments, again and again, into the same folder
    for delay in (0.05, 0.13, 0.21, 0.3):
        p = saver(tmp_path, real_digit, -1)
        assert readline(p) == "READY"
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert len(check_store(root)) == len(read_index(root))


def test_failed_save_leaves_no_sample_and_the_demo_carries_on(tmp_path, real_digit, recognizer, photos,
                                                              monkeypatch):
    from edgedigits.runtime import samples

    store = SampleStore(tmp_path / "samples")
    store.save(real_digit.crop28, real_digit.crop, "4", "m@1")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("-crop.png"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(samples.os, "replace", failing_replace)
    session = Session(recognizer, store)
    session.process(Frame(photos[0][1], 0, 0.0))
    cmd = Command("save", reply=Future())
    assert handle(cmd, session, None) is False
    assert "save failed" in cmd.reply.result() and "No space left" in cmd.reply.result()
    assert len(check_store(store.root)) == 1
    assert not list(store.root.glob(".*.tmp"))


# --- live sources: dropping, losing the camera --------------------------------------------------

def test_slow_processing_drops_frames_never_queues(paper_video):
    grabber = LatestFrame(cv2.VideoCapture(str(paper_video)), reopen=None, pace=300)
    got = []
    while not grabber.finished:
        frame = grabber.read(timeout=0.5)
        if frame is not None:
            got.append(frame.index)
            time.sleep(0.03)                    # a slow recogniser: ~9 frames arrive meanwhile
    grabber.close()
    assert got == sorted(set(got))              # always forward, never the same frame twice
    assert grabber.dropped > 0 and len(got) + grabber.dropped == grabber.read_count
    assert got[-1] == grabber.read_count - 1    # the newest frame, not a queued one


def test_lost_camera_is_retried_with_backoff_and_comes_back(paper_video, photos, recognizer, caplog):
    attempts = []

    def reopen():            # the "camera" comes back on the 3rd try
        attempts.append(time.monotonic())
        return cv2.VideoCapture(str(paper_video)) if len(attempts) >= 3 else None

    cap = cv2.VideoCapture(str(paper_video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, len(photos) * REPEAT - 3)   # 3 frames, then "unplugged"
    source = Live(cap, reopen=reopen, name="camera 0")
    source.grabber.backoff = (0.05, 0.2)
    delays, wait = [], source.grabber.stopping.wait
    source.grabber.stopping.wait = lambda timeout=None: (delays.append(timeout), wait(timeout))[1]
    with caplog.at_level(logging.WARNING, logger="edgedigits.camera"):
        summary = run(source, recognizer, NoneView(lambda s: None), max_frames=6)
    assert summary.frames == 6 and summary.reason == "stopped after 6 frames"
    assert len(attempts) >= 3
    # exponential backoff: the delays the grabber waited double, and each attempt came no sooner
    # than its delay (what a loaded machine adds to a wait is not compared: it does not flake)
    assert delays[:2] == [0.05, 0.1]
    assert np.diff(attempts)[0] >= 0.1 * 0.95
    messages = [r.getMessage() for r in caplog.records]
    assert any("camera lost: reconnecting" in m for m in messages)
    assert any("camera back" in m for m in messages)


def test_stabilizer_holds_a_label_through_a_one_frame_misread(photos, recognizer):
    digits = read_page(photos[0][1], recognizer).digits
    stab = Stabilizer(window=5)
    shown = []
    for i in range(8):
        frame = [replace(d, box=(d.box[0] + i % 2, d.box[1], d.box[2], d.box[3])) for d in digits]
        if i == 4:        # one frame where the classifier flips digit 0
            frame[0] = replace(frame[0], label="1" if frame[0].label != "1" else "7", prob=0.6)
        shown.append([t.vote()[0] for t in stab.update(frame)])
    assert all(s == [d.label for d in digits] for s in shown)
    assert len(stab.tracks) == len(digits)


def test_a_scene_is_measured_once_in_remeasure_frames_and_reads_alike(photos, recognizer, monkeypatch):
    """Measuring the page (its scale and turn) is half a frame's work: the loop measures the first
    frame of a scene and every `remeasure`-th after it, reuses that between, and measures again
    at a scene cut. Read either way, every frame of every sheet reads the same."""
    import edgedigits.runtime.page as page

    calls = []
    measure = page.measure
    monkeypatch.setattr(page, "measure", lambda *a: calls.append(1) or measure(*a))
    sheets = [photos[0][1], photos[5][1]]          # two sheets: a cut between them
    frames = [sheets[0]] * 12 + [sheets[1]] * 3

    def lines(remeasure):
        session, out = Session(recognizer, remeasure=remeasure), []
        for i, image in enumerate(frames):
            session.process(Frame(image, i, float(i)))
            out.append([d.label for d in session.shown])
        return out

    reused = lines(5)
    assert len(calls) == 3, len(calls)     # frames 0 and 6 of the first sheet, 0 of the second
    calls.clear()
    every = lines(0)
    assert len(calls) == len(frames)
    assert reused == every and reused[0] and reused[-1] != reused[0]


def test_camera_demo_never_imports_torch():
    code = ("import sys; import edgedigits.camera_demo.cli, edgedigits.camera_demo.demo, "
            "edgedigits.camera_demo.http_view, edgedigits.camera_demo.sources, edgedigits.camera_demo.bench, "
            "edgedigits.runtime.samples, edgedigits.camera_demo.stabilize; "
            "print([m for m in ('torch', 'tensorflow', 'litert_torch', 'onnx2tf') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
