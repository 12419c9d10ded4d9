"""edgedigits.camera_demo: live digit reading from a camera, a video, an image or a folder,
and the samples that feed `edgedigits finetune` (written by runtime/samples.py, the
format's owner; see docs/camera.md).

Uses only edgedigits.runtime, OpenCV and the standard library (never torch or tensorflow):

    sources.py     cameras, streams, videos, images; a capture thread that keeps the newest frame
    demo.py        the loop: read_page, stabilise, overlay, views (window, none), commands
    http_view.py   the MJPEG stream and its page (http.server)
    stabilize.py   IoU tracking and label votes across frames
    bench.py       `edgedigits bench-camera`
    cli.py         the `camera` and `bench-camera` subcommands
"""
