"""The camera loop: frames in, stable readings and an annotated picture out.

    source = open_source("0")                        # camera, stream, video, image or folder
    summary = run(source, Recognizer(), NoneView())  # until the video ends or you quit
    print(summary.text())

One frame at a time, in the caller's thread: `read_page` (edgedigits.runtime) finds and reads
the digits, `Stabilizer` votes each digit's label over the last frames, `annotate` draws the
boxes and a head-up display adds FPS, per-stage milliseconds and the readings. A view shows the
result (an OpenCV window, an MJPEG stream over HTTP, or printed lines) and hands back the
user's commands: save the digits as samples, correct one, next image, quit.
"""

import logging
import os
import re
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from edgedigits.errors import EdgeDigitsError
from edgedigits.runtime import annotate, read_page

from .stabilize import Stabilizer

log = logging.getLogger("edgedigits.camera")

MESSAGE_SECONDS = 4.0
SCENE_CUT = 12.0        # mean absolute change of a 32x24 thumbnail (0-255) that starts a new scene
REMEASURE = 30          # frames of one scene read with the page's scale and turn measured on an earlier
                        # one (`read_page(measured=...)`) before they are measured again


@dataclass
class Command:
    """A user action for the loop; `reply` (if any) gets the loop's one-line answer."""
    name: str                       # save | correct | next | quit
    args: tuple = ()
    reply: Future | None = None


@dataclass
class Reading:
    frame: int
    name: str
    lines: list
    seconds: float                  # since the start


@dataclass
class Summary:
    source: str
    reason: str
    frames: int
    dropped: int
    seconds: float
    stages: dict                    # mean ms per stage over the processed frames
    readings: list                  # every change of the readings (a Reading each)
    samples: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines_at(self, frame: int) -> list:
        """The stable readings shown at `frame` (the last change at or before it)."""
        shown = [r.lines for r in self.readings if r.frame <= frame]
        return shown[-1] if shown else []

    def text(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stages.items() if k != "total")
        last = self.readings[-1].lines if self.readings else []
        return "\n".join([
            f"{self.source}: {self.reason}. {self.frames} frame{'s' if self.frames != 1 else ''} in "
            f"{self.seconds:.1f} s "
            f"({self.fps:.1f} FPS), {self.dropped} dropped",
            f"per frame: {self.stages.get('total', 0.0):.1f} ms ({stages} ms)",
            f"readings: {len(self.readings)} change{'s' if len(self.readings) != 1 else ''}; "
            f"last: {' | '.join(last) or '(no digits)'}",
        ] + ([f"samples saved: {self.samples}"] if self.samples else []))


def stable_lines(digits, n_lines: int) -> list:
    """Line strings from digits already in reading order (each with .line)."""
    lines = [""] * n_lines
    for d in digits:
        lines[d.line] += d.label
    return lines


class Session:
    """What the views act on: the latest frame, its digits and their stable labels."""

    def __init__(self, recognizer, store=None, stabilizer=None, read_options=None, source_name="",
                 remeasure: int = REMEASURE):
        self.recognizer, self.store = recognizer, store
        self.remeasure = remeasure         # 0: measure every frame
        self.measured, self.since_measured = None, 0
        self.stabilizer = stabilizer or Stabilizer()
        self.read_options = dict(read_options or {})
        self.low = self.read_options.get("low_confidence", 0.7)
        self.source_name = source_name
        self.frames, self.samples_saved = 0, 0
        self.readings: list[Reading] = []
        self.sums: dict[str, float] = {}
        self.ema: dict[str, float] = {}
        self.fps, self.last_t = 0.0, None
        self.t0 = time.monotonic()
        self.frame = self.base = self.thumb = None
        self.shown, self.tracks, self.lines = [], [], []
        self.rendered_key = None
        self.message, self.message_until = "", 0.0
        self.prompt = ""                   # the window view's correction prompt
        self.show_indices = False          # number the boxes (always in the http view; in the
                                           # window view while correcting)
        self.snapshot = {"frame": -1, "lines": [], "digits": [], "fps": 0.0, "status": "", "message": ""}

    # --- per frame --------------------------------------------------------------------------

    def process(self, frame, wait_ms: float = 0.0) -> np.ndarray:
        """Read, stabilise and draw one frame; returns the annotated BGR image."""
        if frame.new_scene or self.scene_cut(frame.image):
            self.stabilizer.reset()
            self.measured = None
        reuse = self.measured if self.since_measured < self.remeasure else None
        result = read_page(frame.image, self.recognizer, measured=reuse, **self.read_options)
        self.since_measured = self.since_measured + 1 if reuse is not None and result.measured else 0
        self.measured = result.measured
        t = time.perf_counter()
        tracks = self.stabilizer.update(result.digits)
        shown = []
        for d, track in zip(result.digits, tracks):
            label, conf = track.vote()
            shown.append(replace(d, label=label, prob=conf, low_confidence=conf < self.low))
        stable = replace(result, digits=shown, lines=stable_lines(shown, len(result.lines)))
        t_stab = time.perf_counter()
        base = annotate(frame.image, stable)
        self.frame, self.shown, self.tracks = frame, shown, tracks
        self.base, self.lines = base, stable.lines
        if not self.readings or self.readings[-1].lines != stable.lines or frame.new_scene:
            self.readings.append(Reading(frame.index, frame.name, stable.lines, time.monotonic() - self.t0))
        self.frames += 1
        out = self.render()
        t_draw = time.perf_counter()

        stages = {k: v for k, v in result.timings.items() if k != "total"}
        stages.update(stabilise=(t_stab - t) * 1000, overlay=(t_draw - t_stab) * 1000)
        stages["total"] = result.timings.get("total", 0.0) + (t_draw - t) * 1000
        self.account(stages, wait_ms)
        self.snapshot = self.state(stable.lines)
        return out

    def scene_cut(self, image: np.ndarray) -> bool:
        """Whether the picture changed all at once (a cut in a video, another sheet put under the
        camera): then earlier frames' votes say nothing about this one. Compares 32x24 thumbnails;
        a hand-held camera moving over the same sheet changes them far less."""
        small = cv2.resize(image, (32, 24), interpolation=cv2.INTER_AREA).astype(np.int16)
        cut = self.thumb is not None and float(np.abs(small - self.thumb).mean()) > SCENE_CUT
        self.thumb = small
        return cut

    def render(self) -> np.ndarray:
        """The annotated frame with the head-up display (redrawn when a message or prompt changes)."""
        out = self.base.copy() if self.base is not None else np.zeros((480, 640, 3), np.uint8)
        if self.show_indices or self.prompt:
            draw_indices(out, self.shown)
        self.draw_hud(out, self.lines)
        self.rendered_key = self.hud_key()
        return out

    def hud_key(self):
        return self.prompt, self.current_message(), self.show_indices

    def account(self, stages: dict, wait_ms: float) -> None:
        now = time.perf_counter()
        if self.last_t is not None:
            dt = now - self.last_t
            self.fps = 1.0 / dt if self.fps == 0 else 0.9 * self.fps + 0.1 / max(dt, 1e-6)
        self.last_t = now
        stages = {**stages, "capture": wait_ms}
        for k, v in stages.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.ema[k] = v if k not in self.ema else 0.9 * self.ema[k] + 0.1 * v

    def state(self, lines) -> dict:
        return {"frame": self.frame.index if self.frame else -1, "name": self.frame.name if self.frame else "",
                "lines": lines, "fps": round(self.fps, 1), "message": self.current_message(),
                "model_id": self.recognizer.model_id,
                "digits": [{"index": i, "label": d.label, "prob": round(float(d.prob), 3),
                            "box": [int(v) for v in d.box], "line": d.line} for i, d in enumerate(self.shown)]}

    # --- drawing ----------------------------------------------------------------------------

    def current_message(self) -> str:
        return self.message if time.monotonic() < self.message_until else ""

    def say(self, text: str) -> str:
        self.message, self.message_until = text, time.monotonic() + MESSAGE_SECONDS
        log.info(text)
        return text

    def draw_hud(self, image: np.ndarray, lines) -> None:
        """FPS, per-stage ms (moving averages), the readings, and any message, top left."""
        stages = "  ".join(f"{k} {v:.1f}" for k, v in self.ema.items() if k not in ("total", "capture"))
        rows = [f"FPS {self.fps:4.1f}   {self.ema.get('total', 0.0):.1f} ms per frame:", stages,
                "read: " + (" | ".join(lines) if lines else "-")]
        for extra in (self.prompt, self.current_message()):
            if extra:
                rows.append(extra)
        hud(image, rows)

    def with_status(self, status: str) -> np.ndarray:
        """The last picture (or a blank one) with a red banner: a lost camera, say."""
        out = self.render()
        hud(out, [status], color=(60, 60, 255), bottom=True)
        return out

    # --- user actions -----------------------------------------------------------------------

    def save(self) -> str:
        """Save every digit on screen as an accepted sample (label = the shown reading)."""
        if self.store is None:
            return self.say("no samples folder: start with --samples DIR")
        if not self.shown:
            return self.say("no digits on screen to save")
        for d, raw in zip(self.shown, self.raw_labels()):
            self.store.save(d.crop28, d.crop, d.label, self.recognizer.model_id, source="accepted",
                            predicted=raw[0], prob=raw[1], box=d.box, frame=self.frame.index)
            self.samples_saved += 1
        return self.say(f"saved {len(self.shown)} samples to {self.store.root}")

    def correct(self, index: int, label: str) -> str:
        """Save digit #index as a sample with the right label, and show that label from now on."""
        if self.store is None:
            return self.say("no samples folder: start with --samples DIR")
        if not self.shown or not 0 <= index < len(self.shown):
            return self.say(f"no digit #{index} on screen (0-{len(self.shown) - 1})" if self.shown
                            else "no digits on screen to correct")
        if label not in tuple("0123456789"):
            return self.say(f"{label!r} is not a digit 0-9")
        d, raw = self.shown[index], self.raw_labels()[index]
        self.store.save(d.crop28, d.crop, label, self.recognizer.model_id, source="corrected",
                        predicted=raw[0], prob=raw[1], box=d.box, frame=self.frame.index)
        self.tracks[index].corrected = label
        self.samples_saved += 1
        return self.say(f"digit #{index}: {d.label} -> {label}, saved as a correction")

    def raw_labels(self):
        """(label, prob) the model gave each shown digit in the latest frame."""
        return [t.votes[-1] for t in self.tracks]

    def summary(self, reason: str, dropped: int) -> Summary:
        n = max(self.frames, 1)
        stages = {k: v / n for k, v in self.sums.items()}
        return Summary(self.source_name, reason, self.frames, dropped, time.monotonic() - self.t0,
                       stages, self.readings, self.samples_saved)


def hud(image: np.ndarray, rows, color=(255, 255, 255), bottom: bool = False) -> None:
    """Rows of text on a darkened (not hidden) band, sized to the image (in place)."""
    h, w = image.shape[:2]
    scale = max(0.38, w / 1700)
    thick = 1 if w < 1600 else 2
    step = int(30 * scale) + 5
    band = min(h, step * len(rows) + 5)
    y0 = h - band if bottom else 0
    region = image[y0:y0 + band]
    region[:] = region >> 1
    for i, text in enumerate(rows):
        cv2.putText(image, text, (6, y0 + step * (i + 1) - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                    thick, cv2.LINE_AA)


def draw_indices(image: np.ndarray, digits) -> None:
    """'#i' on a dark tag at each box's top-left corner: the number to give to correct a digit."""
    scale = max(0.3, image.shape[1] / 2200)
    for i, d in enumerate(digits):
        x, y = d.box[:2]
        (tw, th), base = cv2.getTextSize(f"#{i}", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(image, (x, y), (x + tw + 2, y + th + base + 1), (40, 40, 40), -1)
        cv2.putText(image, f"#{i}", (x + 1, y + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 220, 120), 1,
                    cv2.LINE_AA)


# --- views ------------------------------------------------------------------------------------

class NoneView:
    """No picture: print the readings whenever they change."""

    def __init__(self, print_fn=print):
        self.print = print_fn
        self.printed = 0

    def start(self, session) -> None:
        self.session = session

    def show(self, image) -> None:
        readings = self.session.readings
        for r in readings[self.printed:]:
            where = r.name if r.name and not r.name.endswith((".mp4", ".avi", ".mkv", ".mov")) else \
                f"frame {r.frame}"
            self.print(f"{where} ({r.seconds:.2f}s): {' | '.join(r.lines) if r.lines else '(no digits)'}")
        self.printed = len(readings)

    def commands(self) -> list:
        return []

    def close(self) -> None:
        pass


def gui_available() -> bool:
    """Whether this OpenCV build has a GUI backend (opencv-python-headless has none)."""
    m = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.M)
    return not (m and m.group(1).upper() == "NONE")


class WindowView:
    """An OpenCV window. Keys: s save, c correct (then the digit's # and the right digit; or click
    a box, then the digit), n next image, q quit, Esc cancel."""

    TITLE = "edgedigits camera"

    def __init__(self):
        if not gui_available():
            raise EdgeDigitsError("this OpenCV has no GUI (opencv-python-headless); use --view http and "
                                  "open the printed address in a browser, or install opencv-python")
        self.mode, self.typed, self.pick, self.pending = None, "", None, []

    def start(self, session) -> None:
        self.session = session
        try:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise EdgeDigitsError(f"cannot open a window ({str(e).strip().splitlines()[-1]}); "
                                  f"no display? use --view http") from None
        cv2.setMouseCallback(self.TITLE, self.on_mouse)

    def on_mouse(self, event, x, y, flags, param) -> None:
        if event != cv2.EVENT_LBUTTONDOWN or not self.session.shown:
            return
        for i, d in enumerate(self.session.shown):
            bx, by, bw, bh = d.box
            if bx <= x < bx + bw and by <= y < by + bh:
                self.mode, self.pick = "label", i
                self.session.prompt = f"correct #{i} (read {d.label}): type the right digit, Esc cancels"

    def show(self, image) -> None:
        cv2.imshow(self.TITLE, image)

    def commands(self) -> list:
        key = cv2.waitKey(1) & 0xFF
        if key == 255:
            return []
        ch, s = chr(key), self.session
        if key == 27:
            self.mode, s.prompt = None, ""
        elif self.mode == "index":
            if ch.isdigit():
                self.typed += ch
            if key in (10, 13) or (ch.isdigit() and len(s.shown or ()) <= 10):
                if self.typed.isdigit() and int(self.typed) < len(s.shown or ()):
                    self.mode, self.pick = "label", int(self.typed)
                    s.prompt = f"correct #{self.pick} (read {s.shown[self.pick].label}): type the right digit"
                else:
                    self.mode, s.prompt = None, ""
                    s.say(f"no digit #{self.typed}")
        elif self.mode == "label":
            if ch.isdigit():
                self.mode, s.prompt = None, ""
                return [Command("correct", (self.pick, ch))]
        elif ch == "s":
            return [Command("save")]
        elif ch == "c":
            self.mode, self.typed = "index", ""
            s.prompt = "correct: type the digit's # (Enter), or click its box; Esc cancels"
        elif ch == "n":
            return [Command("next")]
        elif ch == "q":
            return [Command("quit")]
        return []

    def close(self) -> None:
        cv2.destroyAllWindows()
        cv2.waitKey(1)


# --- the loop ---------------------------------------------------------------------------------

class Recorder:
    """Annotated frames to a video, written under a temporary name and renamed when closed."""

    FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}

    def __init__(self, path: Path, fps: float):
        self.path, self.fps, self.writer = Path(path), fps if 0 < fps <= 240 else 30.0, None
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*self.FOURCC.get(self.path.suffix.lower(), "mp4v"))
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self.writer.isOpened():
                raise EdgeDigitsError(f"cannot record to {self.path}: no encoder for {self.path.suffix} in "
                                      f"this OpenCV; use .mp4 or .avi")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp, self.path)
            log.info("recorded %s", self.path)


def handle(cmd: Command, session: Session, source) -> bool:
    """Run one command; returns True to quit. A command whose asker gave up (its reply cancelled:
    the http client went away or timed out) is not run."""
    if cmd.reply is not None and not cmd.reply.set_running_or_notify_cancel():
        return False
    answer, quit_ = "", False
    try:
        if cmd.name == "save":
            answer = session.save()
        elif cmd.name == "correct":
            answer = session.correct(int(cmd.args[0]), str(cmd.args[1]))
        elif cmd.name == "next":
            if not hasattr(source, "advance"):
                answer = session.say("next: only for a folder of images")
            else:
                answer = session.say("next image" if source.advance() else "this is the last image")
        elif cmd.name == "quit":
            answer, quit_ = "bye", True
        else:
            answer = f"unknown command {cmd.name!r}"
    except (EdgeDigitsError, OSError, ValueError) as e:   # a full disk must not end the demo
        answer = session.say(f"{cmd.name} failed: {e}")
    if cmd.reply is not None:
        cmd.reply.set_result(answer)
    return quit_


def run(source, recognizer, view, *, store=None, record=None, max_frames: int = 0,
        stabilizer=None, read_options=None, name: str = "", remeasure: int = REMEASURE) -> Summary:
    """Process frames until the source ends, the user quits, or max_frames (0: no limit)."""
    session = Session(recognizer, store, stabilizer, read_options, name or getattr(source, "name", ""),
                      remeasure)
    recorder = Recorder(record, getattr(source, "fps", 0.0)) if record else None
    reason, status_shown = "", ""
    view.start(session)
    try:
        while not reason:
            t = time.perf_counter()
            frame = source.read(timeout=0.05)
            if frame is not None:
                image = session.process(frame, (time.perf_counter() - t) * 1000)
                if recorder:
                    recorder.write(image)
                view.show(image)
                status_shown = ""
                if max_frames and session.frames >= max_frames:
                    reason = f"stopped after {max_frames} frames"
            elif source.finished:
                reason = source.end_reason
            elif source.status:
                if source.status != status_shown or session.hud_key() != session.rendered_key:
                    view.show(session.with_status(source.status))
                    status_shown = source.status
            elif session.hud_key() != session.rendered_key:
                view.show(session.render())
            for cmd in view.commands():
                if handle(cmd, session, source):
                    reason = "quit"
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        source.close()
        view.close()
        if recorder:
            recorder.close()
    return session.summary(reason, source.dropped)
