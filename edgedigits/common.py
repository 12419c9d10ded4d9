"""Small helpers every part of the project shares (standard library only)."""

import argparse
import hashlib
import io
import os
import secrets
import sys
from contextlib import contextmanager
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0-65535 (0: any free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0: any free port)")
    return value


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


CHECKSUM_SUFFIX = ".sha256"


def checksum_path(path: Path) -> Path:
    """Where a file's recorded sha256 lies beside it: `model.onnx` -> `model.onnx.sha256`."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def write_checksum(path: Path) -> Path:
    """Record a file's sha256 beside it, in `sha256sum` format (`sha256sum -c` checks it)."""
    out = checksum_path(path)
    atomic_write(out, f"{sha256(path)}  {Path(path).name}\n".encode())
    return out


def read_checksum(path: Path) -> str | None:
    """The sha256 recorded beside a file, or None when there is none (or it is unreadable)."""
    try:
        text = checksum_path(path).read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return None
    return text[0].lower() if text and len(text[0]) == 64 else None


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a file through a hidden temporary name beside it (unique, created exclusively: two
    threads saving at once never share one), fsync it and rename it into place: a reader (or a
    crash) never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def display_path(path) -> str:
    """A path as printable text: bytes that are not UTF-8 (a file name from another system) shown
    as \\xNN escapes, so that printing or JSON-encoding it never fails or writes lone surrogates."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@contextmanager
def quiet_output(stdout: bool = False, stderr: bool = True):
    """Hide what native code writes to file descriptors 1 and/or 2 meanwhile (LiteRT's "INFO:
    Created TensorFlow Lite XNNPACK delegate", libpng's warnings, FFmpeg, converter logs); errors
    reach us as exceptions anyway. The one helper for that (set EDGEDIGITS_VERBOSE=1 to see all)."""
    fds = [fd for fd, on in ((1, stdout), (2, stderr)) if on]
    if os.environ.get("EDGEDIGITS_VERBOSE") or not fds:
        yield
        return
    try:
        for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
            if fd in fds and stream.fileno() != fd:     # a replaced stream (e.g. captured): leave it
                fds.remove(fd)
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "w") as null:
            for fd in fds:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)


def quiet_stderr():
    """`quiet_output` for stderr only."""
    return quiet_output(stdout=False, stderr=True)
