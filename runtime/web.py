"""`edgedigits web`: serve the web app (web/, built with npm into web/dist/), or copy it out.

Standard library only. The site is static: every script, .wasm and model file is served from it
(no CDN). Files with a `.gz` sibling (written by the build) are sent compressed, with
`Content-Encoding: gzip`, to clients that accept it; each response has an ETag (its content hash)
and `Cache-Control: no-cache`, so the service worker's install revalidates what the page has just
loaded (304s) instead of downloading it twice.

    edgedigits web                    # build if needed, serve on http://127.0.0.1:8000/
    edgedigits web --host 0.0.0.0     # reachable from a phone on the same network (see docs/web.md)
    edgedigits web --build DIR        # write the static site into DIR for any web host
"""

import errno
import hashlib
import http.server
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edgedigits.common import display_path, port_number
from edgedigits.errors import EdgeDigitsError

WEB = Path(__file__).resolve().parents[1] / "web"
DIST = WEB / "dist"
# what a build is made of: a site older than any of these is built again
SOURCES = (WEB / "src", WEB / "build.mjs", WEB / "package-lock.json",
           WEB.parent / "models" / "cnn" / "model_int8.onnx", WEB.parent / "runtime" / "tuning.json")
MIME = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
        ".json": "application/json", ".webmanifest": "application/manifest+json",
        ".wasm": "application/wasm", ".onnx": "application/octet-stream", ".png": "image/png",
        ".svg": "image/svg+xml", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8"}


def register(sub) -> None:
    p = sub.add_parser("web", help="serve the web app (reads digits in the browser, offline)",
                       description="Serve the web app on HOST:PORT (building it with npm first when "
                                   "it is not built or older than its sources), or write it into a "
                                   "folder with --build.")
    p.add_argument("--port", type=port_number, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for a phone on the same network)")
    p.add_argument("--build", type=Path, metavar="DIR",
                   help="write the static site into DIR (empty, or a site written before) and exit")
    p.set_defaults(func=web)
    from edgedigits.runtime import web_bench

    web_bench.register(sub)


# --- the build -----------------------------------------------------------------------------------

def newest(paths) -> float:
    """The newest modification time of these files and of everything under these folders."""
    times = [0.0]
    for path in paths:
        if path.is_dir():
            times += [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
        elif path.exists():
            times.append(path.stat().st_mtime)
    return max(times)


def is_built(site: Path) -> bool:
    return (site / "build.json").is_file() and (site / "index.html").is_file()


def npm(*args: str, cwd: Path = WEB) -> None:
    """Run npm in web/ (its output shown); a failure is an EdgeDigitsError."""
    if shutil.which("npm") is None:
        raise EdgeDigitsError("the web app is not built and npm is not installed: install Node.js 20+ "
                              "with npm, then run `npm ci && npm run build` in web/")
    done = subprocess.run(["npm", *args], cwd=cwd, stdout=sys.stderr)
    if done.returncode != 0:
        raise EdgeDigitsError(f"`npm {' '.join(args)}` in {display_path(cwd)} failed (exit {done.returncode})")


def build_site(out: Path = DIST) -> Path:
    """Build the site into `out` with `npm run build` (after `npm ci` when web/node_modules is missing)."""
    if not (WEB / "package.json").is_file():
        raise EdgeDigitsError(f"{display_path(WEB)}: no web app sources here (package.json)")
    if not (WEB / "node_modules").is_dir():
        npm("ci", "--ignore-scripts", "--no-audit", "--no-fund")
    npm("run", "--silent", "build", "--", str(out))
    return out


def is_fresh(site: Path) -> bool:
    """Built, and no newer than its sources (or stale, with no npm here to build it again)."""
    if not is_built(site):
        return False
    return (site / "build.json").stat().st_mtime >= newest(SOURCES) or shutil.which("npm") is None


def ensure_built(site: Path = DIST) -> Path:
    """The built site: web/dist, built (again) when it is missing or older than its sources."""
    return site if is_fresh(site) else build_site(site)


def check_out(out: Path) -> None:
    """`out` may receive a site: missing, empty, or holding a site written before."""
    if out.exists() and not out.is_dir():
        raise EdgeDigitsError(f"--build {display_path(out)}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_built(out):
        raise EdgeDigitsError(f"--build {display_path(out)}: the folder is not empty and holds no "
                              "edgedigits site; pick an empty or new folder")


def copy_site(site: Path, out: Path) -> Path:
    """Write the built site into `out` (see check_out)."""
    check_out(out)
    if out.resolve() == site.resolve():
        return out
    try:
        if out.is_dir():
            shutil.rmtree(out)
        shutil.copytree(site, out)
    except OSError as e:
        raise EdgeDigitsError(f"--build {display_path(out)}: {e.strerror or e}") from None
    return out


# --- the server ----------------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of files under `server.site`; `.gz` siblings for gzip clients; ETags; 404 else."""

    server_version = "edgedigits-web"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):      # quiet: one line per request is noise here
        pass

    def resolve(self):
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        root = self.server.site.resolve()
        path = (root / rel).resolve()
        if path != root and root not in path.parents:
            return None
        if path.is_dir():
            path = path / "index.html"
        return path if path.is_file() else None

    def do_HEAD(self):
        self.send_file(body=False)

    def do_GET(self):
        self.send_file(body=True)

    def send_file(self, body: bool):
        path = self.resolve()
        if path is None:
            data = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.count(len(data) if body else 0)
            if body:
                self.wfile.write(data)
            return
        gz = path.with_name(path.name + ".gz")
        use_gz = gz.is_file() and "gzip" in self.headers.get("Accept-Encoding", "")
        data, etag = self.server.read(gz if use_gz else path)
        if etag in [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.count(0)
            return
        self.send_response(200)
        self.send_header("Content-Type", MIME.get(path.suffix.lower(), "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("ETag", etag)
        self.send_header("Vary", "Accept-Encoding")
        if use_gz:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.count(len(data) if body else 0)
        if body:
            self.wfile.write(data)

    def count(self, body_bytes: int) -> None:
        with self.server.lock:
            self.server.requests += 1
            self.server.body_bytes += body_bytes

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):     # the browser went away mid-response
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    """The site's server; counts requests and body bytes sent (the transfer a client saw)."""

    daemon_threads = True

    def __init__(self, site: Path, host: str, port: int):
        self.site, self.lock, self.requests, self.body_bytes = Path(site), threading.Lock(), 0, 0
        self.etags = {}
        try:
            super().__init__((host, port), Handler)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise EdgeDigitsError(f"port {port} on {host} is in use; pick another with --port "
                                      "(or --port 0 for any free one)") from None
            if isinstance(e, socket.gaierror) or e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise EdgeDigitsError(f"cannot listen on {host!r}: not an address of this machine") from None
            raise EdgeDigitsError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        except (UnicodeError, ValueError, OverflowError):
            raise EdgeDigitsError(f"cannot listen on {host!r}: not an address") from None

    def read(self, path: Path):
        """(bytes, ETag) of a file; the ETag (a content hash) is computed once per version of it."""
        data = path.read_bytes()
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self.lock:
            etag = self.etags.get(key)
        if etag is None:
            etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
            with self.lock:
                self.etags[key] = etag
        return data, etag

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


def start_server(site: Path, host: str = "127.0.0.1", port: int = 0) -> Server:
    """A Server on host:port (0: a free one) answering in a daemon thread; `.shutdown()` stops it."""
    server = Server(site, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def web(args) -> int:
    if args.build is not None:
        check_out(args.build)
        # web/dist when it is up to date, else a build straight into DIR
        out = copy_site(DIST, args.build) if is_fresh(DIST) else build_site(args.build.resolve())
        print(f"wrote the web app to {display_path(out)} (serve it over https, or on localhost: "
              "the camera needs a secure origin)")
        return 0
    server = Server(DIST, args.host, args.port)         # a busy port fails before any build
    try:
        ensure_built(DIST)
    except BaseException:
        server.server_close()
        raise
    print(f"serving {display_path(DIST)} on {server.url}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
