"""Downloads that fail say so in one line: no network, a refused connection, a bad checksum or
a cut connection, for a dataset or feature weights, end in one ``error:`` line naming the URL,
the folder the file can be put into by hand and the option that points at a copy."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from gan_runner.core.download import download
from gan_runner.core.errors import UserError
from gan_runner.data import fashion_mnist
from gan_runner.metrics.features.weights import FID_WEIGHTS_URL, locate_inception_weights

BIN = Path(sys.executable).parent
PAYLOAD = b"the bytes of a file worth fetching"


@pytest.fixture
def offline(monkeypatch):
    """A machine without a network: every lookup of a host name fails, as with no DNS."""

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def fetch(url: str, target: Path, **kwargs) -> Path:
    return download(url, target, what="the test file", option="pass test.file=PATH", **kwargs)


def assert_nothing_left(folder: Path) -> None:
    assert not folder.exists() or list(folder.iterdir()) == []


def test_no_network_is_one_line_naming_url_folder_and_option(tmp_path, offline):
    target = tmp_path / "cache" / "file.bin"
    with pytest.raises(UserError) as error:
        fetch("https://example.org/file.bin", target)
    assert str(error.value) == (
        "could not download the test file from https://example.org/file.bin: Temporary "
        f"failure in name resolution (put file.bin into {target.parent} yourself, or pass "
        "test.file=PATH)")
    assert_nothing_left(target.parent)


def test_a_refused_connection_is_the_same_line(tmp_path):
    with pytest.raises(UserError, match=r"from http://127\.0\.0\.1:9/f: .*refused \(put f "
                                        rf"into {tmp_path} yourself, or pass test\.file=PATH"):
        fetch("http://127.0.0.1:9/f", tmp_path / "f")  # port 9 (discard): nothing listens
    assert_nothing_left(tmp_path)


def test_a_bad_checksum_is_refused_and_nothing_is_kept(tmp_path):
    source = tmp_path / "mirror" / "f"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    with pytest.raises(UserError, match=r"has md5 [0-9a-f]{32}, expected 0{32}") as error:
        fetch(source.as_uri(), tmp_path / "cache" / "f", checksum="md5:" + "0" * 32)
    assert f"put f into {tmp_path / 'cache'} yourself" in error.value.hint
    assert_nothing_left(tmp_path / "cache")


def test_a_verified_download_lands_whole_and_alone(tmp_path):
    source = tmp_path / "mirror" / "f"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    target = fetch(source.as_uri(), tmp_path / "cache" / "f", checksum=f"sha256:{sha}")
    assert target.read_bytes() == PAYLOAD
    assert [p.name for p in target.parent.iterdir()] == ["f"]  # no temporary file


def test_the_feature_weights_say_where_to_put_them(tmp_path, offline):
    with pytest.raises(UserError) as error:
        locate_inception_weights(None, str(tmp_path))
    assert FID_WEIGHTS_URL in str(error.value)
    assert f"into {tmp_path / 'weights'} yourself" in error.value.hint
    assert "metrics.inception_weights=PATH" in error.value.hint


def test_fashion_mnist_offline_names_the_mirror_folder_and_option(tmp_path, offline):
    with pytest.raises(UserError) as error:
        fashion_mnist.locate(str(tmp_path), download=True)
    text = str(error.value)
    assert text.startswith("could not download FashionMNIST's train-images-idx3-ubyte.gz from "
                           "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    assert f"into {tmp_path / 'FashionMNIST' / 'raw'} yourself" in text
    assert "dataset.root=DIR" in text


def idx_gz(array: np.ndarray) -> bytes:
    """An IDX file (Fashion-MNIST's format) of uint8 ``array``, gzipped."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                      *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_downloads_verified_files_it_then_reads(tmp_path, monkeypatch):
    from torchvision.datasets import FashionMNIST

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = {"train-images-idx3-ubyte.gz": np.full((3, 28, 28), 7),
             "train-labels-idx1-ubyte.gz": np.array([1, 2, 3]),
             "t10k-images-idx3-ubyte.gz": np.zeros((2, 28, 28)),
             "t10k-labels-idx1-ubyte.gz": np.array([4, 5])}
    resources = []
    for name, array in files.items():
        (mirror / name).write_bytes(idx_gz(array))
        resources.append((name, hashlib.md5((mirror / name).read_bytes()).hexdigest()))
    monkeypatch.setattr(FashionMNIST, "mirrors", [mirror.as_uri() + "/"])
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    images, labels = fashion_mnist.load(str(tmp_path / "data"), "train", download=True)
    assert images.shape == (3, 28, 28) and (images == 7).all() and labels.tolist() == [1, 2, 3]
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(files)


@pytest.mark.slow
def test_gan_train_without_a_network_ends_in_one_line(tmp_path):
    """The issue's case: ``gan-train dataset=cifar10 dataset.download=true`` offline. Every
    connection goes to a proxy that is not there, so nothing reaches the network."""
    nowhere = "http://127.0.0.1:9"
    env = {**os.environ, "GAN_RUNNER_CACHE": str(tmp_path / "cache"), "no_proxy": "",
           "NO_PROXY": "", **{k: nowhere for k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                                                   "HTTPS_PROXY")}}
    done = subprocess.run([str(BIN / "gan-train"), "dataset=cifar10", "dataset.download=true",
                           "debug=fast", f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: could not download CIFAR10's cifar-10-python.tar.gz from "
                           "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: ")
    assert f"into {tmp_path / 'cache'} yourself, or set dataset.root=DIR" in line
