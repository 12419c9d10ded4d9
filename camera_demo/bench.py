"""`edgedigits bench-camera`: how many frames per second the camera loop sustains, stage by stage.

It runs the demo's own per-frame work (`Session.process`: read_page, stabilise, annotate + HUD)
and the JPEG encode the http view adds, on one CPU core (the process is pinned where the OS
allows it, OpenCV and the interpreter use one thread), over a 640x480 frame with ten digits.

The default frame is synthetic, so the benchmark needs no files: ten digits in a script font
on unevenly lit, noisy paper, two lines of five (what a webcam pointed at a note sees). Pass
--source to time your own image, video or folder instead.
"""

import os
import time

import cv2
import numpy as np

from .sources import Frame


def synthetic_frame(size=(640, 480), seed: int = 0):
    """(BGR image, true lines): ten random digits written in two lines on a photo-like page."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 215 + 25 * (xx / w) - 20 * (yy / h)                 # uneven light across the sheet
    page = light[..., None] * np.float32([0.97, 1.0, 1.0]) + rng.normal(0, 3, (h, w, 1))
    image = np.clip(page, 0, 255).astype(np.uint8)
    digits = "".join(str(d) for d in rng.integers(0, 10, 10))
    lines = [digits[:5], digits[5:]]
    scale, thick = h / 190, max(2, round(h / 110))
    for row, text in enumerate(lines):
        y = int(h * (0.42 + 0.36 * row))
        x = int(w * 0.12)
        for ch in text:
            dy = int(rng.integers(-h // 60, h // 60 + 1))
            cv2.putText(image, ch, (x, y + dy), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, scale, (90, 40, 30),
                        thick, cv2.LINE_AA)
            x += int(w * 0.155)
    return cv2.GaussianBlur(image, (3, 3), 0), lines


def pin_one_core():
    """Pin this process to one CPU (Linux); returns the CPU id or None."""
    if hasattr(os, "sched_getaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    return None


def benchmark(recognizer, images, frames: int = 300, warmup: int = 10, quality: int = 80,
              read_options=None, remeasure: int | None = None) -> dict:
    """Time `frames` frames cycling over `images`; per-stage means and per-frame percentiles.
    `remeasure`: the Session's (default: the camera loop's own)."""
    from .demo import REMEASURE, Session

    remeasure = REMEASURE if remeasure is None else remeasure
    session = Session(recognizer, read_options=read_options, remeasure=remeasure)
    totals, jpeg = [], []
    for i in range(warmup + frames):
        image = images[i % len(images)]
        frame = Frame(image, i, time.monotonic(), new_scene=len(images) > 1)
        t = time.perf_counter()
        out = session.process(frame)
        t1 = time.perf_counter()
        cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        t2 = time.perf_counter()
        if i == warmup - 1:
            session = Session(recognizer, read_options=read_options, remeasure=remeasure)   # forget the warm-up
        if i >= warmup:
            totals.append((t1 - t) * 1000)
            jpeg.append((t2 - t1) * 1000)
    n = max(session.frames, 1)
    stages = {k: v / n for k, v in session.sums.items() if k not in ("total", "capture")}
    totals, jpeg = np.array(totals), np.array(jpeg)
    return {"frames": frames, "stages_ms": stages, "frame_ms": float(totals.mean()),
            "frame_p50_ms": float(np.percentile(totals, 50)), "frame_p95_ms": float(np.percentile(totals, 95)),
            "jpeg_ms": float(jpeg.mean()), "fps": 1000.0 / totals.mean(),
            "fps_with_jpeg": 1000.0 / (totals.mean() + jpeg.mean()), "lines": session.lines}


def format_report(r: dict, title: str) -> str:
    rows = [title, f"{'stage':24}{'mean ms':>9}"]
    rows += [f"{k:24}{v:9.2f}" for k, v in r["stages_ms"].items()]
    rows += [f"{'per frame':24}{r['frame_ms']:9.2f}   (p50 {r['frame_p50_ms']:.2f}, p95 {r['frame_p95_ms']:.2f})"
             f"  -> {r['fps']:.0f} FPS",
             f"{'+ JPEG (http view)':24}{r['jpeg_ms']:9.2f}   -> {r['fps_with_jpeg']:.0f} FPS"]
    return "\n".join(rows)
