"""Fashion-MNIST from a local folder, Debian's package, or torchvision's download.

Three ways to get the files, tried in this order, so the same config works on a laptop with
torchvision's cache, on Debian with ``dataset-fashion-mnist``, and on a cluster with a shared copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan_runner.core.errors import UserError
from gan_runner.core.paths import cache_base
from gan_runner.data.downloads import fetch_torchvision_files
from gan_runner.data.idx import read_idx

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
_LABELS = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")


def _find(folder: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``folder`` or in torchvision's ``FashionMNIST/raw`` below it."""
    for base in (folder, folder / "FashionMNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    return None


def locate(root: str | None, download: bool) -> Path:
    """The folder holding the IDX files; a ``UserError`` naming all three ways if none has them."""
    # an explicit root is the only place looked at: silently training on other files would hide
    # a typo in the path
    candidates = [Path(root).expanduser()] if root else [DEBIAN_ROOT]
    for folder in candidates:
        if _find(folder, _FILES["train"]) and _find(folder, _FILES["test"]):
            return folder
    if download:  # torchvision's files, read as they come (gzipped): _find looks there
        from torchvision.datasets import FashionMNIST

        target = Path(root).expanduser() if root else cache_base()
        return fetch_torchvision_files(FashionMNIST, target,
                                       "set dataset.root=DIR to a folder with the IDX files")
    where = (f"dataset.root={root} has no Fashion-MNIST files" if root
             else "no Fashion-MNIST files found")
    raise UserError(
        where,
        "set dataset.root=DIR to a folder with the IDX files, or `apt-get install "
        "dataset-fashion-mnist` (Debian), or pass dataset.download=true",
    )


def load(root: str | None, split: str, download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of one split; train and test never mix."""
    folder = locate(root, download)
    images = read_idx(_find(folder, _FILES[split]))  # type: ignore[arg-type]
    labels = read_idx(_find(folder, _LABELS[split]))  # type: ignore[arg-type]
    return images.copy(), labels.astype(np.int64)
