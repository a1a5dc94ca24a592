"""Labels from the data: the labelled sets carry theirs, an image folder's classes are its
subfolders, the toy sets label each point with its mode, balanced subsets take equal shares,
the feed hands out each batch's labels with its images, and the spec (class count, names and
counts) survives a checkpoint, while older checkpoints without it still load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.data.datasets import DATASETS
from gan_runner.data.feed import build_feed
from gan_runner.data.images import (
    ImageDatasetConfig,
    heldout_indices,
    in_memory,
    subset_indices,
)
from gan_runner.data.stream import BatchStream
from gan_runner.data.toy import ToyDatasetConfig, mode_centers
from gan_runner.storage.checkpoint import save_checkpoint
from gan_runner.storage.run_checkpoint import RunCheckpoint

from conftest import needs_fmnist

CPU = torch.device("cpu")
CFG = ImageDatasetConfig(name="noise", resolution=8)
FOLDER = ImageDatasetConfig(name="image_folder", resolution=8, channels=1, labels="folders")


def pixels(count: int) -> torch.Tensor:
    return torch.randint(0, 256, (count, 1, 8, 8), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


def folder(root: Path, layout: dict[str, int]) -> Path:
    """PNGs under ``root``: ``{"cat": 3}`` puts three in root/cat, ``{"": 1}`` one at the root."""
    for sub, count in layout.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("L", (8, 8), 40 * i).save(root / sub / f"{i}.png")
    return root


def whole(batch: torch.Tensor) -> torch.Tensor:
    return batch


@needs_fmnist
def test_fashion_mnist_carries_its_ten_named_classes_and_their_counts():
    data = DATASETS.get("fashion_mnist")(ImageDatasetConfig(name="fashion_mnist",
                                                            max_images=500))
    spec = data.spec
    assert spec.num_classes == 10 and spec.class_names[0] == "T-shirt/top"
    assert sum(spec.class_counts) == 500 and len(data.labels) == 500
    assert data.labels.dtype == torch.int64
    assert list(spec.class_counts) == torch.bincount(data.labels, minlength=10).tolist()


@needs_fmnist
def test_labels_none_drops_them_and_changes_no_pixel():
    cfg = ImageDatasetConfig(name="fashion_mnist", max_images=200)
    labelled = DATASETS.get("fashion_mnist")(cfg)
    plain = DATASETS.get("fashion_mnist")(dataclasses.replace(cfg, labels="none"))
    assert plain.labels is None and plain.spec == DataSpec((1, 32, 32))
    assert torch.equal(plain.pixels, labelled.pixels)
    assert plain.description == labelled.description  # the real-feature cache is shared


def write_idx(path: Path, array: torch.Tensor) -> None:
    """An uncompressed IDX file of uint8 ``array`` (the format torchvision's MNIST reads)."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(
        n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.numpy().tobytes())


def test_mnist_carries_its_digit_classes_through_torchvision(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    labels = torch.tensor([3, 1, 4, 1, 5, 9], dtype=torch.uint8)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", torch.zeros(6, 28, 28, dtype=torch.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    data = DATASETS.get("mnist")(ImageDatasetConfig(name="mnist", root=str(tmp_path)))
    assert data.labels.tolist() == [3, 1, 4, 1, 5, 9]
    assert data.spec.num_classes == 10 and data.spec.class_names[3] == "3 - three"
    assert data.spec.class_counts[1] == 2


def test_a_balanced_subset_takes_an_equal_share_of_each_class():
    labels = torch.cat([torch.zeros(90), torch.ones(10), torch.full((50,), 2)]).long()
    cfg = dataclasses.replace(CFG, max_images=30, balanced=True)
    chosen = subset_indices(len(labels), cfg, labels)
    assert torch.bincount(labels[chosen]).tolist() == [10, 10, 10]
    assert torch.equal(chosen, subset_indices(len(labels), cfg, labels))  # fixed by the seed
    unbalanced = subset_indices(len(labels), dataclasses.replace(cfg, balanced=False), labels)
    assert torch.bincount(labels[unbalanced], minlength=3)[1] < 10


def test_a_balanced_subset_larger_than_a_class_allows_is_one_line():
    labels = torch.cat([torch.zeros(90), torch.ones(10)]).long()
    with pytest.raises(UserError, match="needs 15 images of class 1, and the data has 10"):
        subset_indices(100, dataclasses.replace(CFG, max_images=30, balanced=True), labels)


def test_held_out_images_lie_outside_a_balanced_subset():
    labels = torch.arange(200) % 4
    cfg = dataclasses.replace(CFG, max_images=40, balanced=True, heldout=30)
    train, held = subset_indices(200, cfg, labels), heldout_indices(200, cfg, labels)
    assert len(held) == 30 and not set(train.tolist()) & set(held.tolist())


@pytest.mark.parametrize("name, labels", [("mnist", "none"), ("image_folder", "auto")])
def test_balanced_needs_labels(name, labels):
    with pytest.raises(UserError, match=r"balanced=True is not valid .*has none"):
        ImageDatasetConfig(name=name, balanced=True, max_images=10, labels=labels)


def test_folders_labels_are_for_image_folders_only():
    with pytest.raises(UserError, match=r"labels=.folders. is not valid"):
        ImageDatasetConfig(name="cifar10", labels="folders")


def test_an_image_folders_classes_are_its_sorted_subfolders(tmp_path):
    root = folder(tmp_path / "pets", {"dog": 2, "cat": 3, "cat/kittens": 1})
    data = DATASETS.get("image_folder")(dataclasses.replace(FOLDER, root=str(root)))
    assert data.spec.class_names == ("cat", "dog")  # torchvision's ImageFolder order
    assert data.spec.class_counts == (4, 2)  # nested folders belong to their first level
    assert data.labels.tolist() == [0, 0, 0, 0, 1, 1]


def test_an_image_folder_without_labels_keeps_its_images_at_the_root(tmp_path):
    root = folder(tmp_path / "flat", {"": 3})
    data = DATASETS.get("image_folder")(dataclasses.replace(FOLDER, root=str(root),
                                                            labels="auto"))
    assert data.labels is None and len(data) == 3 and not data.spec.is_labelled


def test_images_at_the_root_of_a_class_folder_are_one_line(tmp_path):
    root = folder(tmp_path / "mixed", {"": 2, "cat": 1})
    with pytest.raises(UserError, match=r"2 image\(s\) lie directly in it") as error:
        DATASETS.get("image_folder")(dataclasses.replace(FOLDER, root=str(root)))
    assert "dataset.labels=none" in str(error.value)


def test_an_empty_class_folder_is_one_line(tmp_path):
    root = folder(tmp_path / "pets", {"cat": 1})
    (root / "dog").mkdir()
    with pytest.raises(UserError, match=r"class folder .*dog has no images"):
        DATASETS.get("image_folder")(dataclasses.replace(FOLDER, root=str(root)))


def test_toy_points_are_labelled_with_their_mode():
    data = DATASETS.get("toy_grid25")(ToyDatasetConfig(name="toy_grid25", num_samples=500))
    assert data.spec.num_classes == 25 and sum(data.spec.class_counts) == 500
    centers = mode_centers("toy_grid25", 2.0)
    nearest = torch.cdist(data.points, centers).argmin(1)
    assert torch.equal(nearest, data.labels)


def test_x_flipped_copies_have_their_images_labels():
    labels = torch.arange(10) % 3
    data = in_memory(pixels(10), dataclasses.replace(CFG, hflip=True), "noise", labels,
                     ("a", "b", "c"))
    assert torch.equal(data.labels, torch.cat([labels, labels]))
    assert data.spec.class_counts == (4, 3, 3)  # images, not flips


@pytest.mark.parametrize("resident, workers", [(True, 0), (False, 0), (False, 2)])
def test_the_feed_gives_each_batch_its_labels_and_the_same_images_as_before(resident, workers):
    labels = torch.arange(10) % 3
    data = in_memory(pixels(10), CFG, "noise", labels, ("a", "b", "c"))
    if not resident:
        del data.memory_bytes  # decoded on demand: through the loader
    feed = build_feed(data, BatchStream(data, 4, seed=1), whole, CPU, torch.contiguous_format,
                      workers)
    plain = build_feed(data, BatchStream(data, 4, seed=1), whole, CPU,
                       torch.contiguous_format, workers)
    reference = BatchStream(data, 4, seed=1)
    for _ in range(4):
        indices = reference.next_indices()
        images, got = feed.next_labelled()
        assert torch.equal(got, labels[indices]) and torch.equal(images, data.batch(indices))
        assert torch.equal(plain.next(), images)


def test_an_unlabelled_set_feeds_no_labels():
    data = in_memory(pixels(10), CFG, "noise")
    feed = build_feed(data, BatchStream(data, 4, seed=1), whole, CPU, torch.contiguous_format,
                      workers=0)
    assert feed.next_labelled()[1] is None


def test_reading_labels_draws_no_random_numbers():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    data = in_memory(pixels(10), CFG, "noise", torch.arange(10) % 2, ("a", "b"))
    build_feed(data, BatchStream(data, 4, seed=1), whole, CPU, torch.contiguous_format,
               0).next_labelled()
    assert torch.equal(torch.get_rng_state(), before)


def test_the_spec_and_its_classes_survive_a_checkpoint(tmp_path):
    spec = DataSpec((1, 8, 8), 3, ("a", "b", "c"), (5, 4, 1))
    state = {"G": {}, "D": {}, "G_ema": {}, "counters": {"nimg": 0}, "rng": {}}
    config = {"model": {"name": "dcgan"}, "dataset": {"name": "noise"}}
    RunCheckpoint(config, spec, state, "0.1.0", {}).save(tmp_path / "ckpt-000000000.pt")
    assert RunCheckpoint.load(tmp_path / "ckpt-000000000.pt").spec == spec


def test_a_checkpoint_that_stores_only_the_shape_is_of_unlabelled_data(tmp_path):
    """Format-2 files written before labels existed: ``spec`` alone, no ``classes``."""
    state = {"G": {}, "D": {}, "G_ema": {}, "counters": {"nimg": 0}, "rng": {}}
    checkpoint = RunCheckpoint({"model": {"name": "dcgan"}, "dataset": {"name": "noise"}},
                               DataSpec((1, 8, 8)), state, "0.1.0", {})
    payload = checkpoint.payload()
    del payload["classes"]
    save_checkpoint(payload, tmp_path / "old.pt")
    assert RunCheckpoint.load(tmp_path / "old.pt").spec == DataSpec((1, 8, 8))


@pytest.mark.parametrize("classes", [{"num_classes": 2, "class_names": ["a"],
                                      "class_counts": []},
                                     {"num_classes": -1, "class_names": [],
                                      "class_counts": []}, [3]])
def test_a_checkpoint_with_damaged_classes_is_one_line(tmp_path, classes):
    state = {"G": {}, "D": {}, "G_ema": {}, "counters": {"nimg": 0}, "rng": {}}
    payload = RunCheckpoint({"model": {"name": "dcgan"}, "dataset": {"name": "noise"}},
                            DataSpec((1, 8, 8)), state, "0.1.0", {}).payload()
    payload["classes"] = classes
    save_checkpoint(payload, tmp_path / "bad.pt")
    with pytest.raises(UserError, match=r"does not hold a gan-train run \(its classes are"):
        RunCheckpoint.load(tmp_path / "bad.pt")
