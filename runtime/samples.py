"""Saved samples: the feedback loop's data, written so that a kill at any moment is harmless.

This module owns the samples format: the camera demo writes it (`SampleStore`), `edgedigits
finetune` reads it (`read_samples`); both import it from here. It lives in the runtime (numpy and
OpenCV only): export and camera_demo both import the runtime, neither imports the other.

A sample is one digit the user accepted (the model's reading was right) or corrected (it was
wrong). On disk, in one folder (see docs/camera.md):

    index.jsonl               one JSON object per line, one line per sample
    <id>-28.png               the 28x28 model input, uint8 grey, white ink on black
    <id>-crop.png             the digit as cut from the frame, original resolution

Order of writes, and why it is safe:
1. each PNG is written by `common.atomic_write` (a hidden temporary name, fsync, os.replace, which is
   atomic): a PNG under its final name is always complete;
2. the folder is fsync'ed so the renames are on disk;
3. only then is the sample's index line appended with ONE os.write on an O_APPEND descriptor,
   then fsync'ed. A sample exists when, and only when, its line is in the index, and a line is
   written only after its files are complete.
A kill between steps leaves at most a hidden ``.*.tmp`` file or a complete PNG that no index
line names; readers ignore both (and a truncated last line, which only a power cut could leave).

The web app (web/src/samples.js) downloads its samples as one .zip holding exactly this folder's
files at its root; `read_samples` takes that file as it is.
"""

import hashlib
import json
import os
import secrets
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from edgedigits.common import atomic_write
from edgedigits.errors import EdgeDigitsError

INDEX = "index.jsonl"
FORMAT_VERSION = 1
MAX_ZIP_BYTES = 1 << 30           # a samples .zip unpacks to at most this much (a zip bomb is refused)


def to_uint8(crop28: np.ndarray) -> np.ndarray:
    """The float32 [28, 28] model input in [0, 1] as the uint8 image it came from."""
    return np.clip(np.rint(np.asarray(crop28, np.float32) * 255.0), 0, 255).astype(np.uint8)


def fsync_dir(path: Path) -> None:
    """Make renames inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_line(path: Path, record: dict) -> None:
    """Append one JSON line with a single write() on an O_APPEND descriptor, then fsync."""
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.write(fd, line) != len(line):  # a short write to a local file means a full disk
            raise OSError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise EdgeDigitsError(f"could not encode a {image.shape} {image.dtype} image as PNG")
    return buf.tobytes()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class SampleStore:
    """Append-only store of samples in one folder; see the module docstring for the format."""

    def __init__(self, root):
        self.root = Path(root)
        self.index = self.root / INDEX

    def ensure_folder(self) -> None:
        """Create the folder on the first save (starting the demo creates nothing)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgeDigitsError(f"cannot create the samples folder {self.root}: {e.strerror}") from None

    def save(self, crop28: np.ndarray, crop: np.ndarray, label: str, model_id: str, *,
             source: str = "accepted", predicted: str | None = None, prob: float | None = None,
             box=None, frame: int | None = None) -> dict:
        """Write one sample (two PNGs, then its index line); return the index record."""
        if label not in tuple("0123456789"):
            raise EdgeDigitsError(f"label {label!r} is not a digit 0-9")
        if source not in ("accepted", "corrected"):
            raise ValueError(f"source must be 'accepted' or 'corrected', not {source!r}")
        self.ensure_folder()
        now = utc_now()
        sample_id = f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"
        record = {"id": sample_id, "label": label, "source": source, "predicted": predicted,
                  "prob": None if prob is None else round(float(prob), 4),
                  "input": f"{sample_id}-28.png", "crop": f"{sample_id}-crop.png",
                  "time": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                  "model_id": model_id, "box": None if box is None else [int(v) for v in box],
                  "frame": frame, "format": FORMAT_VERSION}
        atomic_write(self.root / record["input"], encode_png(to_uint8(crop28)))
        atomic_write(self.root / record["crop"], encode_png(np.ascontiguousarray(crop)))
        fsync_dir(self.root)
        append_line(self.index, record)
        return record

    def records(self) -> list[dict]:
        """The samples in the index, oldest first (see read_index)."""
        return read_index(self.root)


def parse_index(path: Path) -> tuple[list[dict], int]:
    """(records, lines skipped) of an index file: a line that is not a JSON object (a torn tail,
    which only a power cut could leave) is skipped."""
    out, skipped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            out.append(record)
        else:
            skipped += 1
    return out, skipped


def read_index(root) -> list[dict]:
    """Index records whose files exist; a line that does not parse (a torn tail) is skipped."""
    root = Path(root)
    path = root / INDEX
    if not path.exists():
        return []
    return [record for record in parse_index(path)[0]
            if all((root / str(record.get(k, ""))).is_file() for k in ("input", "crop"))]


def unzip_samples(path: Path, out: Path) -> None:
    """Unpack a samples .zip (the web app's download) into `out`: only index.jsonl and .png files at
    the archive's root; anything else (folders, other names) is left out."""
    try:
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.infolist() if not m.is_dir() and "/" not in m.filename
                       and "\\" not in m.filename and not m.filename.startswith(".")
                       and (m.filename == INDEX or m.filename.endswith(".png"))]
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise EdgeDigitsError(f"{path}: unpacks to more than {MAX_ZIP_BYTES >> 20} MB; not a samples file")
            if INDEX not in {m.filename for m in members}:
                raise EdgeDigitsError(f"{path}: no {INDEX} in this zip; download the samples from the web "
                                      "app's Samples view")
            for m in members:
                (out / m.filename).write_bytes(z.read(m))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise EdgeDigitsError(f"{path}: not a readable samples .zip ({e})") from None


def read_samples(root, log=print):
    """(images uint8 [N, 28, 28], labels int64 [N], records) from a samples folder (or the web
    app's .zip of one), for training.

    Lines that do not parse (a torn last line) and samples whose PNG is missing or not 28x28
    are skipped with a count; identical images keep the LAST label given (a correction saved
    after an acceptance of the same still frame wins). No index at all is an error.
    """
    root = Path(root)
    if root.is_file() and zipfile.is_zipfile(root):          # the web app's download
        with tempfile.TemporaryDirectory() as tmp:
            unzip_samples(root, Path(tmp))
            return read_samples(tmp, log)
    index = root / INDEX
    if not index.is_file():
        raise EdgeDigitsError(f"{root}: no {INDEX} here; save samples with `edgedigits camera "
                              f"--samples {root}` (keys s / c) first")
    records, skipped = parse_index(index)
    by_image = {}
    for record in records:
        try:
            label = int(record["label"])
            image = cv2.imread(str(root / record["input"]), cv2.IMREAD_GRAYSCALE)
        except (KeyError, TypeError, ValueError):
            image = None
        if image is None or image.shape != (28, 28) or not 0 <= label <= 9:
            skipped += 1
            continue
        key = hashlib.sha256(image.tobytes()).digest()
        by_image.pop(key, None)          # re-insert so the order stays "last saved"
        by_image[key] = (image, label, record)
    if skipped:
        log(f"samples: skipped {skipped} unreadable index line(s) or image(s) in {root}")
    if not by_image:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), []
    images, labels, records = zip(*by_image.values())
    return np.stack(images), np.array(labels, dtype=np.int64), list(records)
