"""The MNIST loader: checksums, corrupt files, split sizes, label counts."""

import gzip
import shutil

import numpy as np
import pytest

from edgedigits.train import data

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_canonical_files_verify(mnist_dir):
    for name in data.FILES:
        data.verify(mnist_dir / name)


def test_shapes_and_label_counts(mnist):
    train_x, train_y, test_x, test_y = mnist
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert train_x.dtype == np.uint8
    assert np.bincount(train_y).tolist() == TRAIN_COUNTS
    assert np.bincount(test_y).tolist() == TEST_COUNTS
    assert int(test_x.sum(dtype=np.int64)) == 264923200


def test_split_is_seeded_disjoint_and_complete():
    train_idx, val_idx = data.split_indices(60000, 5000, seed=0)
    assert len(train_idx) == 55000 and len(val_idx) == 5000
    assert len(np.intersect1d(train_idx, val_idx)) == 0
    assert np.array_equal(np.union1d(train_idx, val_idx), np.arange(60000))
    again, _ = data.split_indices(60000, 5000, seed=0)
    other, _ = data.split_indices(60000, 5000, seed=1)
    assert np.array_equal(train_idx, again) and not np.array_equal(train_idx, other)


def copy_data(mnist_dir, tmp_path):
    for name in data.FILES:
        shutil.copy(mnist_dir / name, tmp_path / name)
    return tmp_path


def test_truncated_file_gives_clear_error(mnist_dir, tmp_path):
    d = copy_data(mnist_dir, tmp_path)
    target = d / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(data.DataError) as e:
        data.load_mnist(d, allow_download=False)
    message = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "sha256" in message and "\n" not in message


def test_wrong_file_with_right_name_is_rejected(mnist_dir, tmp_path):
    d = copy_data(mnist_dir, tmp_path)
    with gzip.open(d / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3]))
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte.gz"):
        data.load_mnist(d, allow_download=False)


def test_missing_file_without_download(tmp_path):
    with pytest.raises(data.DataError, match="missing"):
        data.load_mnist(tmp_path, allow_download=False)


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(data.DataError, match="no such folder"):       # a folder the user names must exist
        data.resolve_data_dir(tmp_path / "flag")
    (tmp_path / "flag").mkdir()
    (tmp_path / "env").mkdir()
    assert data.resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert data.resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv(data.ENV_VAR)
    assert data.resolve_data_dir(None).name == "mnist"


def test_download_failure_is_one_line(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(data.DataError) as e:
        data.load_mnist(tmp_path)
    assert "could not download" in str(e.value) and "\n" not in str(e.value)
    assert not list(tmp_path.glob("*.part"))
