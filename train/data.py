"""MNIST from the four canonical gzip IDX files: locate, download, verify, load, split.

Every file is checked against its known sha256 before it is used, so nothing is ever
trained or evaluated on a truncated or wrong file.
"""

import gzip
import os
import struct
import urllib.request
from pathlib import Path

import numpy as np

from edgedigits.errors import EdgeDigitsError
from edgedigits.common import sha256

ENV_VAR = "EDGEDIGITS_DATA"
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# name -> sha256 of the canonical .gz file
FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# Pixel statistics of the 60k training images scaled to [0, 1].
MEAN, STD = 0.1307, 0.3081


class DataError(EdgeDigitsError):
    """A data problem the user can fix; its message is one line that says how."""


def resolve_data_dir(data_dir=None) -> Path:
    """--data-dir, else $EDGEDIGITS_DATA, else the user cache directory. A folder the user names
    must exist (a typo is not silently created and filled by a download); the cache is made."""
    for given, what in ((data_dir, "--data-dir"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if given:
            path = Path(given).expanduser()
            if path.exists() and not path.is_dir():
                raise DataError(f"{what} {path}: is a file, not a folder of MNIST files")
            if not path.exists():
                raise DataError(f"{what} {path}: no such folder (create it to download MNIST into it)")
            return path
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("edgedigits")) / "mnist"


def verify(path: Path) -> None:
    expected = FILES[path.name]
    actual = sha256(path)
    if actual != expected:
        raise DataError(
            f"{path}: sha256 {actual[:12]}... does not match the canonical MNIST file "
            f"({expected[:12]}...); delete it to download it again, or point --data-dir / "
            f"${ENV_VAR} at the canonical files"
        )


def download(name: str, dest: Path) -> None:
    """Fetch one file from the first mirror that answers, with a progress bar, atomically."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    errors = []
    for mirror in MIRRORS:
        try:
            with urllib.request.urlopen(mirror + name, timeout=30) as r, open(tmp, "wb") as f:
                total = int(r.headers.get("Content-Length", 0)) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False) as bar:
                    for chunk in iter(lambda: r.read(1 << 16), b""):
                        f.write(chunk)
                        bar.update(len(chunk))
            os.replace(tmp, dest)
            return
        except OSError as e:
            errors.append(f"{mirror}: {e}")
            tmp.unlink(missing_ok=True)
    raise DataError(f"could not download {name} ({'; '.join(errors)}); "
                    f"copy the canonical files into {dest.parent} or set --data-dir")


def ensure_files(data_dir: Path, allow_download: bool = True) -> Path:
    """Make sure all four files are in data_dir and verified; download what is missing."""
    for name in FILES:
        path = data_dir / name
        if not path.exists():
            if not allow_download:
                raise DataError(f"{path} is missing; set --data-dir or ${ENV_VAR} to the MNIST folder")
            download(name, path)
        verify(path)
    return data_dir


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzip IDX file (magic 0x0801 labels, 0x0803 images) into a uint8 array."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable gzip IDX file ({e})") from None
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DataError(f"{path}: not a uint8 IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: holds {body.size} values, header says {shape}")
    return body.reshape(shape)


def load_mnist(data_dir=None, allow_download: bool = True):
    """Return (train_images, train_labels, test_images, test_labels) as uint8 arrays."""
    root = ensure_files(resolve_data_dir(data_dir), allow_download)
    return tuple(read_idx(root / name) for name in
                 ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))


def split_indices(n: int, val_size: int, seed: int):
    """Seeded split of range(n) into (train_idx, val_idx)."""
    if not 0 < val_size < n:
        raise DataError(f"validation size {val_size} must be between 1 and {n - 1}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])
