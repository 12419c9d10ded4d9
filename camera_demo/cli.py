"""Subcommands of the camera demo: `camera` and `bench-camera` (see docs/camera.md).

Imports here stay light (argparse, pathlib): OpenCV and the runtime load when a command runs.
"""

import json
import logging
import sys
from pathlib import Path

from edgedigits.common import port_number, positive_int


def add_model(p) -> None:
    """--model, --backend, --threads, --max-pixels: declared once, in the runtime's CLI."""
    from edgedigits.runtime.cli import add_model_args

    add_model_args(p)


def add_speed(p) -> None:
    p.add_argument("--max-side", type=positive_int, metavar="PX", help="process frames downscaled so that "
                   "their long side is at most PX (boxes stay in frame pixels): fewer pixels to "
                   "segment; keep digits 20+ px tall")
    p.add_argument("--no-page", action="store_true", help="do not look for a sheet of paper to flatten "
                   "(when the camera sees only the paper)")
    p.add_argument("--remeasure", type=int, default=None, metavar="N",
                   help="measure the page's scale and turn again every N frames of one scene, reusing "
                   "them between (default 30; 0: every frame)")


def register(sub) -> None:
    p = sub.add_parser(
        "camera", help="read digits live from a camera, a video, an image or a folder",
        description="Read handwritten digits live: boxes, digits, confidences, FPS and per-stage ms drawn "
        "on the picture; readings voted over the last frames so they do not flicker. Keys (window) "
        "or buttons (http): s save the digits as samples, c correct a digit, n next image, q quit.")
    p.add_argument("--source", default="0", help="camera index (default 0), a video file, an image, a "
                   "folder of images, or an rtsp:// / http:// stream")
    add_model(p)
    p.add_argument("--view", choices=("window", "http", "none"),
                   help="window: an OpenCV window (needs a GUI build of OpenCV); http: an MJPEG stream "
                   "and a page with buttons; none: print readings as they change "
                   "(default: window where OpenCV has a GUI, else http)")
    p.add_argument("--bind", default="127.0.0.1", help="http address (default 127.0.0.1; 0.0.0.0 lets "
                   "other machines watch AND control the demo)")
    p.add_argument("--port", type=port_number, default=8080, help="http port (default 8080; 0: any free port)")
    p.add_argument("--record", type=Path, metavar="OUT.mp4", help="also write the annotated frames to a video")
    p.add_argument("--samples", type=Path, default=Path("runs/samples"),
                   help="where saved samples go (default runs/samples; created on the first save)")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--realtime", action="store_true", help="play a video file at its own frame rate, "
                   "dropping frames when processing falls behind (as with a camera)")
    p.add_argument("--size", metavar="WxH", help="ask the camera for this capture size, e.g. 640x480")
    p.add_argument("--votes", type=positive_int, default=8, metavar="N",
                   help="frames each digit's label is voted over (default 8; 1: no smoothing)")
    p.add_argument("--quality", type=positive_int, default=80, help="JPEG quality of the http stream")
    add_speed(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log every http request and more")
    p.set_defaults(func=cmd_camera)

    p = sub.add_parser(
        "bench-camera", help="frames per second of the camera loop on one core, stage by stage",
        description="Time the camera loop's per-frame work (read_page, stabilise, overlay) and the http "
        "view's JPEG encode on one CPU core, over a synthetic 640x480 frame with ten digits (or "
        "--source), and print mean ms per stage and the FPS.")
    p.add_argument("--source", help="image, video or folder to time instead of the synthetic frame")
    add_model(p)
    p.add_argument("--frames", type=positive_int, default=300, help="frames to time (default 300)")
    p.add_argument("--size", default="640x480", metavar="WxH", help="frame size (default 640x480)")
    add_speed(p)
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU core")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s camera: %(message)s", datefmt="%H:%M:%S")


def read_options(args) -> dict:
    """read_page options from the command line (see edgedigits.runtime.page.Options)."""
    options = {"page": False} if args.no_page else {}
    if args.max_side:
        options["max_side"] = args.max_side
    return options


def remeasure(args) -> int:
    """--remeasure, checked: frames between two measurements of the page (0: every frame)."""
    from .demo import REMEASURE

    if args.remeasure is None:
        return REMEASURE
    if args.remeasure < 0:
        from edgedigits.errors import EdgeDigitsError

        raise EdgeDigitsError(f"--remeasure must be 0 or more frames, got {args.remeasure}")
    return args.remeasure


def cmd_camera(args) -> int:
    from edgedigits.runtime import Recognizer
    from edgedigits.runtime.samples import SampleStore

    from .demo import NoneView, WindowView, gui_available, run
    from .sources import open_source, parse_size
    from .stabilize import Stabilizer

    setup_logging(args.verbose)
    every = remeasure(args)                 # checked before a camera or a port is opened
    view_name = args.view or ("window" if gui_available() else "http")
    if view_name == "window":
        view = WindowView()
    elif view_name == "http":
        from .http_view import HttpView

        view = HttpView(args.bind, args.port, args.quality)
    else:
        view = NoneView()
    try:
        recognizer = Recognizer(args.model, threads=args.threads, backend=args.backend)
        source = open_source(args.source, interactive=view_name != "none", realtime=args.realtime,
                             size=parse_size(args.size))
    except BaseException:
        view.close()                           # free the port (http view)
        raise
    print(f"camera: {args.source} -> {recognizer.model_id} ({recognizer.backend}); view {view_name}; "
          f"samples -> {args.samples}", flush=True)
    summary = run(source, recognizer, view, store=SampleStore(args.samples), record=args.record,
                  max_frames=args.max_frames or 0, stabilizer=Stabilizer(window=args.votes),
                  read_options=read_options(args), name=str(args.source), remeasure=every)
    print(summary.text(), flush=True)
    return 0


def bench_images(args, size):
    """Frames for the benchmark: the synthetic page, or the --source frames resized to `size`."""
    import cv2

    from .bench import synthetic_frame
    from .sources import open_source

    if not args.source:
        image, lines = synthetic_frame(size)
        return [image], f"synthetic {size[0]}x{size[1]} page, ten digits {' | '.join(lines)}", lines
    source, images = open_source(args.source), []
    while len(images) < 100:
        frame = source.read()
        if frame is None:
            break
        images.append(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))
    source.close()
    return images, f"{args.source}: {len(images)} frame(s) resized to {size[0]}x{size[1]}", None


def cmd_bench(args) -> int:
    import cv2

    from edgedigits.runtime import Recognizer

    from .bench import benchmark, format_report, pin_one_core
    from .sources import parse_size

    every = remeasure(args)
    cpu = None if args.no_pin else pin_one_core()
    cv2.setNumThreads(1)
    size = parse_size(args.size)
    images, what, truth = bench_images(args, size)
    if not images:
        from edgedigits.errors import EdgeDigitsError

        raise EdgeDigitsError(f"{args.source}: no frames to time")
    recognizer = Recognizer(args.model, threads=args.threads, backend=args.backend)
    result = benchmark(recognizer, images, args.frames, read_options=read_options(args), remeasure=every)
    core = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
    result.update(source=what, model_id=recognizer.model_id, backend=recognizer.backend,
                  threads=args.threads, cpu=core, truth=truth)
    if args.json:
        print(json.dumps(result))
        return 0
    title = (f"bench-camera: {what}\n{recognizer.model_id} ({recognizer.backend}, {args.threads} thread), "
             f"{core}, {args.frames} frames, the page measured every {every or 1} frame(s) of a scene")
    print(format_report(result, title))
    if truth is not None:
        got = "".join(result["lines"])
        right = sum(a == b for a, b in zip(got, "".join(truth))) if len(got) == len("".join(truth)) else 0
        print(f"read: {' | '.join(result['lines']) or '(nothing)'}  (written: {' | '.join(truth)}; "
              f"{right}/10 in place)")
    return 0
