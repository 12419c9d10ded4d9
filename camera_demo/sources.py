"""Frame sources: a camera, a stream URL, a video file, an image, or a folder of images.

Live sources (cameras, streams, and files played with ``realtime=True``) are read in their own
thread by `LatestFrame`, which keeps only the newest frame: when recognition is slower than the
camera, frames are dropped, never queued, so what you see is never seconds old. A live source
that stops delivering frames is reopened with exponential backoff, forever, and says so.

Files are otherwise read frame by frame (every frame is processed, the way a video is analysed),
and a still image is one frame.
"""

import glob
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgedigits.errors import EdgeDigitsError
from edgedigits.runtime.images import quiet_opencv

log = logging.getLogger("edgedigits.camera")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
# Camera backends to try, best first, per platform; CAP_ANY lets OpenCV pick.
CAMERA_BACKENDS = {
    "linux": ("CAP_V4L2", "CAP_ANY"),
    "darwin": ("CAP_AVFOUNDATION", "CAP_ANY"),
    "win32": ("CAP_MSMF", "CAP_DSHOW", "CAP_ANY"),
}


@dataclass
class Frame:
    image: np.ndarray     # BGR uint8
    index: int            # position in the source (counts dropped frames too)
    time: float           # time.monotonic() when it was captured
    name: str = ""        # file name for images
    new_scene: bool = False  # an unrelated picture: forget what earlier frames showed


def parse_size(text):
    """'640x480' -> (640, 480); None -> None."""
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        assert w > 0 and h > 0
    except (ValueError, AssertionError):
        raise EdgeDigitsError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x480") from None
    return w, h


def camera_backends():
    """(name, id) pairs to try on this platform, restricted to what this OpenCV build has."""
    available = set(cv2.videoio_registry.getCameraBackends())
    names = CAMERA_BACKENDS.get(sys.platform, ("CAP_ANY",))
    return [(n.removeprefix("CAP_"), getattr(cv2, n)) for n in names
            if hasattr(cv2, n) and (n == "CAP_ANY" or getattr(cv2, n) in available)]


def try_camera(index: int, backend: int, size=None):
    """An opened capture that delivered a first frame, else None."""
    with quiet_opencv(stderr=False):
        cap = cv2.VideoCapture(index, backend)
        if cap.isOpened():
            if size:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # where supported: no stale frames in the driver
            ok, _ = cap.read()
            if ok:
                return cap
        cap.release()
    return None


def open_camera(index: int, size=None):
    """Open camera `index`; if it fails, say what was tried and which other indices answer."""
    tried = []
    for name, backend in camera_backends():
        cap = try_camera(index, backend, size)
        if cap is not None:
            log.info("camera %d opened with %s", index, name)
            return cap
        tried.append(name)
    others = []
    for other in range(5):
        if other != index:
            cap = try_camera(other, cv2.CAP_ANY)
            if cap is not None:
                others.append(str(other))
                cap.release()
    devices = sorted(glob.glob("/dev/video*")) if sys.platform == "linux" else []
    found = (f"cameras answer at index {', '.join(others)}: try --source {others[0]}" if others
             else "no camera answers at indices 0-4")
    dev = f"; devices: {' '.join(devices)}" if devices else ("; no /dev/video* devices"
                                                             if sys.platform == "linux" else "")
    raise EdgeDigitsError(f"no camera at index {index} (tried backends {', '.join(tried)}; {found}{dev}); "
                          f"check it is connected and that you may use it, or pass a video, an image "
                          f"or a folder with --source")


class LatestFrame:
    """Reads a capture in a thread and keeps only the newest frame (see the module docstring).

    `reopen` makes a new capture after a loss (cameras and streams); without it, the end of
    the capture is the end of the source (a video file played in real time). `pace` (fps)
    plays a file at its own speed instead of as fast as it decodes.
    """

    def __init__(self, cap, reopen=None, pace: float = 0.0, backoff=(0.5, 8.0)):
        self.cap, self.reopen, self.pace, self.backoff = cap, reopen, pace, backoff
        self.cond = threading.Condition()
        self.frame: Frame | None = None
        self.read_count = 0          # frames captured
        self.taken_index = -1        # index of the last frame handed out
        self.dropped = 0             # frames captured but never handed out
        self.status = ""             # "" when healthy, else what is wrong (shown on screen)
        self.ended = False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="capture", daemon=True)
        self.thread.start()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stopping.is_set():
            ok, image = self.cap.read()
            if ok:
                self.publish(image)
                if self.pace:
                    time.sleep(max(0.0, start + self.read_count / self.pace - time.monotonic()))
                continue
            if self.reopen is None:
                break
            self.reconnect()
        with self.cond:
            self.ended = True
            self.cond.notify_all()
        self.cap.release()

    def publish(self, image) -> None:
        with self.cond:
            self.frame = Frame(image, self.read_count, time.monotonic())
            self.read_count += 1
            self.cond.notify_all()

    def reconnect(self) -> None:
        """Reopen with exponential backoff until it works or we are told to stop."""
        self.cap.release()
        attempt, delay = 1, self.backoff[0]
        while not self.stopping.is_set():
            self.status = f"camera lost: reconnecting in {delay:.1f}s (attempt {attempt})"
            log.warning(self.status)
            if self.stopping.wait(delay):
                return
            try:
                cap = self.reopen()
            except EdgeDigitsError:
                cap = None
            if cap is not None:
                self.cap, self.status = cap, ""
                log.warning("camera back after %d attempt(s)", attempt)
                return
            attempt, delay = attempt + 1, min(delay * 2, self.backoff[1])

    def read(self, timeout: float = 0.1) -> Frame | None:
        """The newest frame not handed out yet; None after `timeout` s without one (or at the end)."""
        with self.cond:
            self.cond.wait_for(lambda: self.ended or (self.frame and self.frame.index > self.taken_index),
                               timeout)
            frame = self.frame
            if frame is None or frame.index <= self.taken_index:
                return None
            self.dropped += frame.index - self.taken_index - 1
            self.taken_index = frame.index
            return frame

    @property
    def finished(self) -> bool:
        """True once the capture ended and its last frame was handed out."""
        with self.cond:
            return self.ended and (self.frame is None or self.frame.index <= self.taken_index)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2.0)


class VideoFile:
    """Every frame of a video file, in order, in the caller's thread."""

    live = False
    end_reason = "end of the video"

    def __init__(self, path: Path):
        with quiet_opencv(stderr=True):
            self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise EdgeDigitsError(f"{path}: OpenCV cannot open it as a video (unsupported codec or not "
                                  f"a video); try an .mp4 (H.264) or .avi (MJPG)")
        self.name, self.index, self.status, self.dropped, self.done = path.name, 0, "", 0, False
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 0.0

    def read(self, timeout: float = 0.0) -> Frame | None:
        ok, image = self.cap.read()
        if not ok:
            self.done = True
            return None
        self.index += 1
        return Frame(image, self.index - 1, time.monotonic(), self.name, new_scene=self.index == 1)

    @property
    def finished(self) -> bool:
        return self.done

    def close(self) -> None:
        self.cap.release()


class Stills:
    """Images, one frame each (every one a new scene); `hold` keeps each until `advance()`."""

    live = False
    fps = 0.0
    end_reason = "end of the images"

    def __init__(self, paths, hold: bool = False):
        self.paths, self.hold, self.pos, self.status, self.dropped = list(paths), hold, 0, "", 0
        self.waiting = False   # the current image was handed out and is held

    def read(self, timeout: float = 0.0) -> Frame | None:
        from edgedigits.runtime import load_image

        if self.waiting or self.pos >= len(self.paths):
            if self.waiting:
                time.sleep(timeout)
            return None
        path = self.paths[self.pos]
        try:
            image = load_image(path)
        except EdgeDigitsError as e:
            if len(self.paths) == 1:
                raise
            log.warning("skipped %s", e)       # one bad file in a folder does not end the show
            self.pos += 1
            return None
        frame = Frame(image, self.pos, time.monotonic(), Path(path).name, new_scene=True)
        if self.hold:
            self.waiting = True
        else:
            self.pos += 1
        return frame

    def advance(self) -> bool:
        """Show the next image (a held image stays on screen until then); False at the last."""
        if self.waiting and self.pos + 1 < len(self.paths):
            self.pos += 1
            self.waiting = False
            return True
        return False

    @property
    def finished(self) -> bool:
        return not self.hold and self.pos >= len(self.paths)

    def close(self) -> None:
        pass


class Live:
    """A camera or stream (or a file played in real time) through `LatestFrame`."""

    live = True

    def __init__(self, cap, reopen=None, pace: float = 0.0, name: str = ""):
        self.name = name
        self.end_reason = "end of the video" if reopen is None else "the source closed"
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        self.grabber = LatestFrame(cap, reopen, pace)

    def read(self, timeout: float = 0.1) -> Frame | None:
        return self.grabber.read(timeout)

    status = property(lambda self: self.grabber.status)
    dropped = property(lambda self: self.grabber.dropped)
    finished = property(lambda self: self.grabber.finished)

    def close(self) -> None:
        self.grabber.close()


def image_files(folder: Path):
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def open_source(spec: str, *, interactive: bool = False, realtime: bool = False, size=None):
    """'0' (camera index), rtsp://... or http://... (stream), a video, an image or a folder."""
    spec = str(spec)
    if spec.isdigit():
        index = int(spec)
        cap = open_camera(index, size)
        return Live(cap, reopen=lambda: try_camera(index, cv2.CAP_ANY, size), name=f"camera {index}")
    if "://" in spec:
        with quiet_opencv(stderr=False):
            cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise EdgeDigitsError(f"cannot open the stream {spec} (tried FFMPEG); check the URL")

        def reopen():
            with quiet_opencv(stderr=False):
                c = cv2.VideoCapture(spec, cv2.CAP_FFMPEG)
            return c if c.isOpened() else None
        return Live(cap, reopen=reopen, name=spec)
    path = Path(spec)
    if not path.exists():
        raise EdgeDigitsError(f"{spec}: no such file or folder; --source takes a camera index (0), "
                              f"a video, an image or a folder of images")
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise EdgeDigitsError(f"{path}: no images here ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return Stills(files, hold=interactive)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return Stills([path], hold=interactive)
    video = VideoFile(path)
    if realtime:
        fps = video.fps if 0 < video.fps <= 240 else 30.0
        return Live(video.cap, reopen=None, pace=fps, name=path.name)
    return video
