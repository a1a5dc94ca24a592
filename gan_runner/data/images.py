"""Image datasets: Fashion-MNIST, MNIST, CIFAR-10 and any folder of images.

All of them end up the same way: uint8 (C, R, R) images at ``dataset.resolution``, fitted by
one rule (``dataset.fit``), optionally a fixed seeded subset (``dataset.max_images``, with
as many images of each class as the others with ``dataset.balanced``) and x-flipped copies
(``dataset.hflip``). Fashion-MNIST, MNIST and CIFAR-10 carry their class labels; a folder's
labels are its first-level subfolders with ``dataset.labels=folders`` (torchvision's
``ImageFolder`` rule); ``dataset.labels=none`` drops them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import MISSING
from torch import Tensor

from gan_runner.core.checks import require, require_choice
from gan_runner.core.errors import UserError
from gan_runner.core.paths import cache_base
from gan_runner.data import fashion_mnist
from gan_runner.data.datasets import (
    DATASETS,
    LABEL_CHOICES,
    labelled_spec,
    require_penalty_weights,
    to_float,
)
from gan_runner.data.downloads import fetch_torchvision_files

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601: RGB -> gray, here and in the classifier's input


@dataclass
class ImageDatasetConfig:
    """An image set, fitted to ``resolution`` x ``resolution`` and scaled to [-1, 1]."""

    name: str = MISSING
    root: str | None = None
    split: str = "train"
    resolution: int = 32
    channels: int = 1  # image_folder converts to this many channels; fixed by the others
    fit: str = "pad"  # pad | resize | center_crop: how a non-matching image becomes square
    max_images: int | None = None
    subset_seed: int = 0
    download: bool = False
    hflip: bool = False  # dataset x-flip augmentation (doubles the effective set, as in ADA)
    heldout: int = 0  # images outside the max_images subset kept for the r_v diagnostic
    # auto: the set's own class labels (none for image_folder) | folders: image_folder's
    # first-level subfolders are the classes | none: no labels
    labels: str = "auto"
    balanced: bool = False  # the max_images subset takes as many images of each class as the others
    r1_gamma: float = 10.0  # the R1/R2 weight that regularizer=r1|r2 start from (StyleGAN's)
    gp_lambda: float = 10.0  # the weight regularizer=gp starts from (WGAN-GP's)

    def __post_init__(self) -> None:
        require_choice("dataset.split", self.split, ("train", "test"))
        require(4 <= self.resolution <= 4096, "dataset.resolution", self.resolution,
                "a side length in pixels between 4 and 4096")
        require(self.channels in (1, 3), "dataset.channels", self.channels, "1 or 3")
        require_choice("dataset.fit", self.fit, ("pad", "resize", "center_crop"))
        require(self.max_images is None or self.max_images > 0, "dataset.max_images",
                self.max_images, "a positive count or null for all images")
        require(self.heldout >= 0, "dataset.heldout", self.heldout, "a non-negative count")
        require_choice("dataset.labels", self.labels, LABEL_CHOICES)
        require(self.labels != "folders" or self.name == "image_folder", "dataset.labels",
                self.labels, f"auto or none (dataset={self.name} has its own labels; folders "
                "is for dataset=image_folder)")
        require(not self.balanced or self.labelled, "dataset.balanced", self.balanced,
                f"false without labels (it balances the classes, and dataset={self.name} with "
                f"dataset.labels={self.labels} has none)")
        require_penalty_weights(self)

    @property
    def labelled(self) -> bool:
        """Whether the set will carry labels: its own, or an image folder's subfolders."""
        return self.labels != "none" and (self.name != "image_folder" or self.labels == "folders")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def fit_images(images: Tensor, resolution: int, fit: str) -> Tensor:
    """Make uint8 (N, C, H, W) images square at ``resolution``.

    ``pad`` centers the image on a black square (keeps every pixel: MNIST-like 28 -> 32),
    ``center_crop`` keeps the central square, ``resize`` stretches; then, if the square's side
    is not ``resolution``, an antialiased bilinear resize finishes the job.
    """
    _, _, h, w = images.shape
    if fit == "pad" and (h != w or h < resolution):
        side = max(h, w, resolution if max(h, w) <= resolution else 0)
        top, left = (side - h) // 2, (side - w) // 2
        images = F.pad(images, (left, side - w - left, top, side - h - top))
    elif fit == "center_crop" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        images = images[:, :, top:top + side, left:left + side]
    if images.shape[-2:] != (resolution, resolution):
        resized = F.interpolate(images.float(), size=(resolution, resolution), mode="bilinear",
                                align_corners=False, antialias=True)
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images


def match_channels(images: Tensor, channels: int) -> Tensor:
    """Grayscale <-> RGB: repeat the gray channel, or take ITU-R 601 luma."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor(LUMA).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def _subset_order(count: int, cfg: ImageDatasetConfig) -> Tensor:
    return torch.randperm(count, generator=torch.Generator().manual_seed(cfg.subset_seed))


def _balanced_pick(order: Tensor, labels: Tensor, total: int) -> Tensor:
    """``total`` images of ``order`` with the classes as equal as they divide (the first
    classes take one more), each class's in the order's sequence."""
    classes = int(labels.max()) + 1
    ranked = labels[order]
    picks = []
    for k in range(classes):
        share = total // classes + (k < total % classes)
        members = order[ranked == k]
        if len(members) < share:
            raise UserError(f"dataset.balanced needs {share} images of class {k}, and the "
                            f"data has {len(members)}",
                            f"lower dataset.max_images to at most {len(members) * classes}")
        picks.append(members[:share])
    return torch.cat(picks)


def subset_indices(count: int, cfg: ImageDatasetConfig, labels: Tensor | None = None
                   ) -> Tensor:
    """A fixed subset for limited-data runs: the same images for the same ``subset_seed``;
    with ``dataset.balanced`` (and the images' ``labels``) an equal share of each class."""
    if cfg.max_images is None or cfg.max_images >= count:
        return torch.arange(count)
    if cfg.balanced:
        if labels is None:
            raise ValueError("a balanced subset is chosen by the images' labels: pass them")
        return _balanced_pick(_subset_order(count, cfg), labels, cfg.max_images).sort().values
    return _subset_order(count, cfg)[: cfg.max_images].sort().values


def heldout_indices(count: int, cfg: ImageDatasetConfig, labels: Tensor | None = None
                    ) -> Tensor:
    """``dataset.heldout`` images that D never trains on: the ones drawn right after the
    training subset, so turning the held-out split on never changes the training images
    (``labels``: those of all ``count`` images, which a balanced subset was chosen by)."""
    train = count if cfg.max_images is None else min(cfg.max_images, count)
    if train + cfg.heldout > count:
        raise UserError(f"dataset.heldout={cfg.heldout} needs images outside the training "
                        f"subset, and dataset.max_images={cfg.max_images} leaves "
                        f"{count - train} of {count}",
                        f"set dataset.max_images + dataset.heldout to at most {count}")
    order = _subset_order(count, cfg)
    outside = torch.ones(count, dtype=torch.bool)
    outside[subset_indices(count, cfg, labels)] = False
    return order[outside[order]][:cfg.heldout].sort().values


class ImageSet:
    """Images behind ``load(indices) -> uint8 (N, C, R, R)``; x-flips double its length.

    ``labels`` (int64, one per image, or None) name each image's class among ``class_names``;
    an x-flipped copy has its image's label.
    """

    def __init__(self, load: Callable[[Tensor], Tensor], count: int, cfg: ImageDatasetConfig,
                 description: str, labels: Tensor | None = None,
                 class_names: tuple[str, ...] = ()) -> None:
        self._loader = load
        self._count = count
        self._hflip = cfg.hflip
        self.spec = labelled_spec((cfg.channels, cfg.resolution, cfg.resolution), labels,
                                  class_names)
        self.labels = None if labels is None else labels.repeat(2 if cfg.hflip else 1)
        extras = [f"max_images={cfg.max_images}"] * (cfg.max_images is not None)
        extras += ["balanced"] * (cfg.balanced and labels is not None)
        # everything that makes the pixels: it keys the real-feature cache and is provenance
        self.description = ", ".join([description, f"split={cfg.split}",
                                      f"resolution={cfg.resolution}",
                                      f"channels={cfg.channels}", f"fit={cfg.fit}", *extras])

    def __len__(self) -> int:
        return self._count * (2 if self._hflip else 1)

    def uint8_batch(self, indices: Tensor) -> Tensor:
        images = self._loader(indices % self._count)
        if self._hflip:  # a select, not a masked assignment: no host sync on a device
            flipped = (indices >= self._count).view(-1, 1, 1, 1)
            images = torch.where(flipped, images.flip(-1), images)
        return images

    def batch(self, indices: Tensor) -> Tensor:
        return to_float(self.uint8_batch(indices))


class PixelSet(ImageSet):
    """An ImageSet whose uint8 pixels are all in memory: it reports their size
    (``memory_bytes``) and moves to a device (``on_device``), where the training feed indexes
    batches without leaving it."""

    def __init__(self, pixels: Tensor, cfg: ImageDatasetConfig, description: str,
                 labels: Tensor | None = None, class_names: tuple[str, ...] = ()) -> None:
        super().__init__(pixels.__getitem__, len(pixels), cfg, description, labels, class_names)
        self.pixels, self.memory_bytes = pixels, pixels.nbytes
        self._made_from = (cfg, description)
        self._image_labels, self._class_names = labels, class_names

    def on_device(self, device: torch.device) -> PixelSet:
        """The same set with its pixels (and labels) on ``device``: ``batch`` then takes
        indices there."""
        labels = None if self._image_labels is None else self._image_labels.to(device)
        return PixelSet(self.pixels.to(device), *self._made_from, labels, self._class_names)


def in_memory(images: Tensor, cfg: ImageDatasetConfig, description: str,
              labels: Tensor | None = None, class_names: tuple[str, ...] = ()) -> PixelSet:
    """A PixelSet over uint8 (N, C, H, W) pixels already in memory (fitted once, up front),
    with their labels unless ``dataset.labels=none``."""
    if cfg.labels == "none":
        labels, class_names = None, ()
    chosen = subset_indices(len(images), cfg, labels)
    images = images[chosen]
    fitted = fit_images(match_channels(images, cfg.channels), cfg.resolution, cfg.fit)
    return PixelSet(fitted, cfg, description, None if labels is None else labels[chosen],
                    class_names)


@DATASETS.register("fashion_mnist", schema=ImageDatasetConfig)
def fashion_mnist_set(cfg: ImageDatasetConfig) -> ImageSet:
    images, labels = fashion_mnist.load(cfg.root, cfg.split, cfg.download)
    return in_memory(torch.from_numpy(images).unsqueeze(1), cfg, "fashion_mnist",
                     torch.from_numpy(labels), fashion_mnist.CLASSES)


def _torchvision_set(cls_name: str, cfg: ImageDatasetConfig):
    import torchvision.datasets as tvd

    if cfg.root is None and not cfg.download:
        raise UserError(f"dataset={cls_name.lower()} needs its files",
                        "set dataset.root=DIR (a torchvision root) or pass dataset.download=true")
    root = Path(cfg.root).expanduser() if cfg.root else cache_base()
    if cfg.download:  # through core.download: offline, that is one line, not a traceback
        fetch_torchvision_files(getattr(tvd, cls_name), root,
                                "set dataset.root=DIR to a torchvision root that holds them")
    try:
        return getattr(tvd, cls_name)(str(root), train=cfg.split == "train",
                                      download=cfg.download)
    except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
        raise UserError(f"no {cls_name} files under dataset.root={root}",
                        "point dataset.root at a torchvision root or pass dataset.download=true"
                        ) from error


def _class_labels(targets: object) -> Tensor:
    """torchvision's ``targets`` (a tensor or a list of ints) as int64 labels."""
    return torch.as_tensor(targets, dtype=torch.int64)


@DATASETS.register("mnist", schema=ImageDatasetConfig)
def mnist_set(cfg: ImageDatasetConfig) -> ImageSet:
    found = _torchvision_set("MNIST", cfg)
    return in_memory(found.data.unsqueeze(1), cfg, "mnist", _class_labels(found.targets),
                     tuple(found.classes))


@DATASETS.register("cifar10", schema=ImageDatasetConfig)
def cifar10_set(cfg: ImageDatasetConfig) -> ImageSet:
    found = _torchvision_set("CIFAR10", cfg)
    return in_memory(torch.from_numpy(found.data).permute(0, 3, 1, 2), cfg, "cifar10",
                     _class_labels(found.targets), tuple(found.classes))


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """A file PIL cannot read becomes one line that names it. ``verify`` at the start finds most
    such files cheaply; damage inside a JPEG's image data only shows when it is decoded."""
    from PIL import UnidentifiedImageError

    try:
        yield
    except (OSError, SyntaxError) as error:  # SyntaxError: PIL's "broken PNG file"
        reason = ("not an image file" if isinstance(error, UnidentifiedImageError)
                  else getattr(error, "strerror", None) or str(error))
        raise UserError(f"cannot read image {path}: {reason}",
                        "remove or replace the file, then run the same command again") from error


def _decode(path: Path, channels: int) -> Tensor:
    from PIL import Image

    with _reading(path), Image.open(path) as image:
        pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    tensor = torch.from_numpy(pixels.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)


@DATASETS.register("image_folder", schema=ImageDatasetConfig)
def image_folder_set(cfg: ImageDatasetConfig) -> ImageSet:
    """Every image below ``dataset.root``, decoded on demand (folders can exceed memory)."""
    from PIL import Image

    if cfg.root is None:
        raise UserError("dataset=image_folder needs a folder", "pass dataset.root=DIR")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UserError(f"dataset.root={root} is not a folder", "check the path")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images under dataset.root={root}",
                        f"expected files ending in {', '.join(IMAGE_SUFFIXES)}")
    labels, class_names = (folder_labels(root, files) if cfg.labels == "folders"
                           else (None, ()))
    for path in files:  # fail now, not hours into training
        with _reading(path), Image.open(path) as image:
            image.verify()
    fingerprint = folder_fingerprint(root, files)
    chosen = subset_indices(len(files), cfg, labels)
    files = [files[i] for i in chosen]

    def load(indices: Tensor) -> Tensor:
        return torch.cat([fit_images(_decode(files[i], cfg.channels).unsqueeze(0),
                                     cfg.resolution, cfg.fit) for i in indices.tolist()])

    return ImageSet(load, len(files), cfg,
                    f"image_folder({root}, {len(files)} files, sha256 {fingerprint})",
                    None if labels is None else labels[chosen], class_names)


def folder_labels(root: Path, files: list[Path]) -> tuple[Tensor, tuple[str, ...]]:
    """Each image's class: the first-level subfolder it lies in, classes numbered in the
    sorted order of the subfolders' names (torchvision's ``ImageFolder``). An image directly
    under the root, or a subfolder without images, would be a class by accident: refused."""
    loose = [path for path in files if path.parent == root]
    if loose:
        raise UserError(f"dataset.labels=folders takes the subfolders of dataset.root={root} "
                        f"as classes, and {len(loose)} image(s) lie directly in it (e.g. "
                        f"{loose[0].name})", "move them into a subfolder per class, or pass "
                        "dataset.labels=none")
    class_names = tuple(sorted(entry.name for entry in root.iterdir() if entry.is_dir()))
    index = {name: k for k, name in enumerate(class_names)}
    labels = torch.tensor([index[path.relative_to(root).parts[0]] for path in files],
                          dtype=torch.int64)
    empty = [name for name, n in zip(class_names, torch.bincount(
        labels, minlength=len(class_names)).tolist(), strict=True) if n == 0]
    if empty:
        raise UserError(f"dataset.labels=folders: the class folder {root / empty[0]} has no "
                        "images", "remove the folder or add its images")
    return labels, class_names


def folder_fingerprint(root: Path, files: list[Path]) -> str:
    """A digest of the folder's image files (paths, sizes, modification times): replacing an
    image changes it, so cached real features of the old images are not reused."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
