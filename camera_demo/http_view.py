"""The http view: the annotated stream as MJPEG, a small page with buttons, standard library only.

    GET  /              the page: the live picture, buttons (save, correct, next, quit), readings
    GET  /stream.mjpg   multipart/x-mixed-replace; boundary=frame: one JPEG per processed frame
    GET  /frame.jpg     the latest annotated frame
    GET  /state.json    frame number, FPS, readings, digits (index, label, prob, box), message
    POST /save          save the digits on screen as samples
    POST /correct       form fields index=<digit #>&label=<0-9>: save that digit, correctly labelled
    POST /next, /quit   next image; stop the demo

It binds 127.0.0.1 unless told otherwise: anyone who can reach the port can watch AND press the
buttons (there is no login), so bind another address (e.g. 0.0.0.0, to watch a headless
Raspberry Pi from a phone) only on a network you trust.

Frames are JPEG-encoded lazily by the first client thread that wants them (once per frame, off
the camera loop's thread, and not at all when nobody watches). A client that stops reading only
stalls its own thread; the loop never waits for the network.
"""

import ipaddress
import json
import logging
import select
import socket
import threading
import time
from concurrent.futures import Future, TimeoutError
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import cv2

from edgedigits.errors import EdgeDigitsError

from .demo import Command

log = logging.getLogger("edgedigits.camera")
BOUNDARY = "frame"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgedigits camera</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1em; background: #111; color: #eee; }
 img { max-width: 100%; border: 1px solid #444; }
 button, input { font-size: 1.05em; margin: .2em; }
 #msg { min-height: 1.4em; color: #8f8; } pre { white-space: pre-wrap; }
</style></head><body>
<img src="/stream.mjpg" alt="live picture">
<div>
 <button onclick="post('/save')">Save digits as samples</button>
 <form id="fix" style="display:inline" onsubmit="event.preventDefault(); post('/correct', new FormData(this))">
  digit #<input name="index" type="number" min="0" style="width:4em" required>
  is <input name="label" pattern="[0-9]" maxlength="1" style="width:2em" required>
  <button>Correct</button>
 </form>
 <button onclick="post('/next')">Next image</button>
 <button onclick="post('/quit')">Quit</button>
</div>
<p id="msg"></p><pre id="state"></pre>
<script>
async function post(url, form) {
  const r = await fetch(url, {method: 'POST', body: form ? new URLSearchParams(form) : ''});
  document.getElementById('msg').textContent = (await r.json()).message;
}
setInterval(async () => {
  try {
    const s = await (await fetch('/state.json')).json();
    document.getElementById('state').textContent =
      `frame ${s.frame}  ${s.fps} FPS  ${s.model_id}\\n` + s.lines.join('\\n') + '\\n\\n' +
      s.digits.map(d => `#${d.index}: ${d.label} (${d.prob.toFixed(2)})`).join('   ');
  } catch (e) {}
}, 700);
</script></body></html>
"""


class Hub:
    """The latest annotated frame, and its JPEG (encoded once, on demand)."""

    def __init__(self, quality: int = 80):
        self.quality = quality
        self.cond = threading.Condition()
        self.encode_lock = threading.Lock()
        self.image, self.seq, self.closed = None, 0, False
        self.jpeg, self.jpeg_seq = b"", -1

    def publish(self, image) -> None:
        with self.cond:
            self.image, self.seq = image, self.seq + 1
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, after: int, timeout: float):
        """(seq, JPEG bytes) of a frame newer than `after`; after `timeout` s the latest one again
        (a keep-alive); None once closed or while there is no frame yet."""
        with self.cond:
            self.cond.wait_for(lambda: self.closed or self.seq > after, timeout)
            if self.closed or self.image is None:
                return None
            image, seq = self.image, self.seq
        with self.encode_lock:
            if self.jpeg_seq != seq:
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if ok:
                    self.jpeg, self.jpeg_seq = buf.tobytes(), seq
            return seq, self.jpeg


MAX_FORM = 64 * 1024       # bytes of a POST form (index=..&label=..: a few dozen)
READ_TIMEOUT = 5.0         # seconds to receive a POST body
ANSWER_TIMEOUT = 10.0      # seconds the camera loop has to answer a button


class Handler(BaseHTTPRequestHandler):
    view = None    # set on the subclass made by HttpView

    def log_message(self, fmt, *args):      # http.server logs every request to stderr by default
        log.debug("http %s - %s", self.address_string(), fmt % args)

    def send_body(self, body: bytes, ctype: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, obj, status: int = 200) -> None:
        self.send_body(json.dumps(obj).encode(), "application/json", status)

    def do_GET(self):
        path = self.path.split("?")[0]
        hub = self.view.hub
        if path in ("/", "/index.html"):
            self.send_body(PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/state.json":
            self.send_json(self.view.session.snapshot)
        elif path == "/frame.jpg":
            got = hub.wait(-1, 0)
            if got is None:
                self.send_json({"message": "no frame yet"}, 503)
            else:
                self.send_body(got[1], "image/jpeg")
        elif path == "/stream.mjpg":
            self.stream(hub)
        else:
            self.send_json({"message": f"no page {path}"}, 404)

    def stream(self, hub: Hub) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        seq = 0
        try:
            while True:
                got = hub.wait(seq, timeout=1.0)
                if got is None:
                    if hub.closed:
                        return
                    continue
                seq, jpeg = got
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            return      # the client went away

    def do_POST(self):
        path = self.path.split("?")[0]
        try:
            size = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_FORM:
            self.close_connection = True          # the body, if any, is not read: do not reuse
            return self.send_json({"message": f"Content-Length must be 0 to {MAX_FORM} bytes"},
                                  400 if size < 0 else 413)
        self.connection.settimeout(READ_TIMEOUT)  # a body shorter than announced ends in a timeout
        try:
            body = self.rfile.read(size) if size else b""
        except OSError:
            self.close_connection = True
            return
        form = parse_qs(body.decode("utf-8", "replace"))
        if path == "/correct":
            try:
                args = (int(form["index"][0]), form["label"][0].strip())
            except (KeyError, ValueError, IndexError):
                return self.send_json({"message": "correct needs index=<digit #> and label=<0-9>"}, 400)
            command = Command("correct", args)
        elif path in ("/save", "/next", "/quit"):
            command = Command(path[1:])
        else:
            return self.send_json({"message": f"no action {path}"}, 404)
        command.reply = Future()
        self.view.queue_command(command)
        answer = self.wait_answer(command.reply, ANSWER_TIMEOUT)
        if answer is not None:
            self.send_json({"message": answer})
        elif not self.client_gone():
            self.send_json({"message": "the camera loop did not answer; nothing was done"}, 503)

    def client_gone(self) -> bool:
        """Whether the client closed its side (a browser tab closed, a script that gave up)."""
        try:
            ready, _, _ = select.select([self.connection], [], [], 0)
            return bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def wait_answer(self, reply: Future, timeout: float):
        """The loop's answer, or None when it did not come in `timeout` or the client went away;
        then the command is cancelled if the loop has not started it (an abandoned save is no save)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return reply.result(timeout=0.1)
            except TimeoutError:
                if self.client_gone():
                    break
        if reply.cancel():
            return None
        return reply.result()        # the loop is running it now: its answer comes at once


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class HttpView:
    """Serve the stream and the page on bind:port (port 0: any free port; see `url`)."""

    def __init__(self, bind: str = "127.0.0.1", port: int = 8080, quality: int = 80):
        self.hub = Hub(quality)
        self.lock = threading.Lock()
        self.pending: list[Command] = []
        handler = type("BoundHandler", (Handler,), {"view": self})
        try:
            self.server = ThreadingHTTPServer((bind, port), handler)
        except OSError as e:
            raise EdgeDigitsError(f"cannot serve on {bind}:{port} ({e.strerror}); choose another --port "
                                  f"or --bind") from None
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        self.url = f"http://{'localhost' if is_loopback(host) else host}:{port}/"
        if not is_loopback(bind):
            log.warning("serving on %s: anyone who can reach it can watch and control the demo", bind)
        self.thread = None

    def start(self, session) -> None:
        self.session = session
        session.show_indices = True          # the page's correction form asks for a digit's #
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        self.thread.start()
        print(f"camera: open {self.url} in a browser (Ctrl-C or the Quit button to stop)", flush=True)

    def show(self, image) -> None:
        self.hub.publish(image)

    def queue_command(self, command: Command) -> None:
        with self.lock:
            self.pending.append(command)

    def commands(self) -> list:
        with self.lock:
            out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        self.hub.close()
        if self.thread is not None:             # shutdown() waits for serve_forever to return
            self.server.shutdown()
        self.server.server_close()
        for command in self.commands():           # answer anything that came in too late
            command.reply.set_result("the demo has stopped")
