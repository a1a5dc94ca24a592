"""torchvision's dataset files, fetched through ``core.download`` so that a failure is one line.

torchvision's own download ends in a page of urllib traceback on a machine without a network.
Its dataset classes declare where their files come from (``mirrors`` and ``resources`` for the
MNIST family, ``url``, ``filename`` and ``tgz_md5`` for CIFAR); fetched with the same checksums
into the folder torchvision looks in, they leave torchvision only the unpacking to do.
"""

from __future__ import annotations

from pathlib import Path

from gan_runner.core.download import download, verified

FOLDER_OPTION = "set dataset.root=DIR to another folder"


def _wanted(cls: type, root: Path) -> list[tuple[str, Path, str]]:
    """``(url, target, checksum)`` of each file ``cls`` would download under ``root`` and does
    not have yet (a file torchvision already unpacked counts as had)."""
    if hasattr(cls, "mirrors"):  # MNIST, FashionMNIST, KMNIST...: gzipped IDX files
        raw = root / cls.__name__ / "raw"
        return [(cls.mirrors[0] + name, raw / name, f"md5:{md5}") for name, md5 in cls.resources
                if not (raw / name.removesuffix(".gz")).is_file()]
    if (root / cls.base_folder).is_dir():  # CIFAR: one archive, unpacked into base_folder
        return []
    return [(cls.url, root / cls.filename, f"md5:{cls.tgz_md5}")]


def fetch_torchvision_files(cls: type, root: Path, option: str) -> Path:
    """Download what the torchvision dataset class ``cls`` needs under ``root`` (skipping files
    that are there and verify); ``option`` says how to point the dataset at a copy fetched by
    hand. Returns the folder the files went to."""
    for url, target, checksum in _wanted(cls, root):
        if not verified(target, checksum):
            download(url, target, what=f"{cls.__name__}'s {target.name}", option=option,
                     folder_option=FOLDER_OPTION, checksum=checksum)
    return root
