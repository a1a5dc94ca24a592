"""Real data arrives shaped, scaled and split as the models and metrics expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_runner.core.errors import UserError
from gan_runner.data.datasets import to_float, to_uint8
from gan_runner.data.images import (
    ImageDatasetConfig,
    fashion_mnist_set,
    fit_images,
    image_folder_set,
)
from gan_runner.data.stream import BatchStream
from gan_runner.data.toy import ToyDatasetConfig, ToyPoints, mode_centers

from conftest import needs_fmnist


def test_ring_modes_lie_on_the_circle_and_grid_modes_on_the_lattice():
    ring = mode_centers("toy_ring8", 2.0)
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    grid = mode_centers("toy_grid25", 2.0)
    assert grid.shape == (25, 2) and set(grid[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}


def test_toy_points_cluster_around_modes_and_depend_only_on_the_seed():
    cfg = ToyDatasetConfig(name="toy_grid25", num_samples=5000, std=0.05, seed=3)
    points = ToyPoints(cfg).points
    nearest = torch.cdist(points, mode_centers("toy_grid25", 2.0)).min(dim=1).values
    assert (nearest < 4 * 0.05).float().mean() > 0.99
    assert torch.equal(points, ToyPoints(cfg).points)
    other = ToyPoints(ToyDatasetConfig(name="toy_grid25", num_samples=5000, seed=4)).points
    assert not torch.equal(points, other)


@needs_fmnist
def test_fashion_mnist_is_padded_to_32_in_minus_one_to_one_with_splits_apart():
    train = fashion_mnist_set(ImageDatasetConfig(name="fashion_mnist"))
    test = fashion_mnist_set(ImageDatasetConfig(name="fashion_mnist", split="test"))
    assert (len(train), len(test)) == (60000, 10000)
    batch = train.batch(torch.arange(8))
    assert batch.shape == (8, 1, 32, 32) and batch.dtype == torch.float32
    assert batch.min() == -1.0 and batch.max() <= 1.0
    assert (batch[:, :, :2, :] == -1).all()  # the 2-pixel black border of the padding
    assert not torch.equal(train.uint8_batch(torch.arange(8)), test.uint8_batch(torch.arange(8)))


@needs_fmnist
def test_max_images_takes_a_fixed_seeded_subset():
    def subset(seed: int) -> torch.Tensor:
        cfg = ImageDatasetConfig(name="fashion_mnist", max_images=100, subset_seed=seed)
        data = fashion_mnist_set(cfg)
        assert len(data) == 100
        return data.uint8_batch(torch.arange(100))

    assert torch.equal(subset(0), subset(0)) and not torch.equal(subset(0), subset(1))


def test_missing_fashion_mnist_root_names_the_three_ways(tmp_path):
    with pytest.raises(UserError) as error:
        fashion_mnist_set(ImageDatasetConfig(name="fashion_mnist", root=str(tmp_path)))
    text = str(error.value)
    assert "dataset.root" in text and "dataset-fashion-mnist" in text
    assert "dataset.download=true" in text


@pytest.mark.parametrize("fit,expect", [("pad", (3, 16, 16)), ("center_crop", (3, 16, 16)),
                                        ("resize", (3, 16, 16))])
def test_non_square_images_become_square_at_the_resolution(fit, expect):
    images = torch.randint(0, 256, (2, 3, 20, 40), dtype=torch.uint8)
    assert fit_images(images, 16, fit).shape[1:] == expect


def test_padding_keeps_every_pixel_and_centers_the_image():
    images = torch.full((1, 1, 28, 28), 200, dtype=torch.uint8)
    padded = fit_images(images, 32, "pad")
    assert padded.shape == (1, 1, 32, 32)
    assert (padded[0, 0, 2:30, 2:30] == 200).all() and padded.sum() == 200 * 28 * 28


def test_center_crop_keeps_the_middle_of_a_wide_image():
    images = torch.zeros(1, 1, 8, 16, dtype=torch.uint8)
    images[..., 4:12] = 255
    assert (fit_images(images, 8, "center_crop") == 255).all()


def write_images(folder: Path, sizes: list[tuple[int, int]]) -> None:
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(sub / f"{i}.png")


def test_image_folder_reads_recursively_and_fits_every_image(tmp_path):
    write_images(tmp_path, [(40, 30), (30, 40), (64, 64), (17, 23)])
    data = image_folder_set(ImageDatasetConfig(name="image_folder", root=str(tmp_path),
                                               resolution=16, channels=3, fit="center_crop"))
    assert len(data) == 4
    batch = data.batch(torch.arange(4))
    assert batch.shape == (4, 3, 16, 16) and batch.min() >= -1 and batch.max() <= 1


def test_grayscale_folder_gets_one_channel(tmp_path):
    write_images(tmp_path, [(16, 16)] * 2)
    data = image_folder_set(ImageDatasetConfig(name="image_folder", root=str(tmp_path),
                                               resolution=8, channels=1))
    assert data.batch(torch.arange(2)).shape == (2, 1, 8, 8)


def test_unreadable_image_in_a_folder_is_named(tmp_path):
    write_images(tmp_path, [(16, 16)])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"broken\.png"):
        image_folder_set(ImageDatasetConfig(name="image_folder", root=str(tmp_path)))


def test_hflip_doubles_the_set_with_mirror_images(tmp_path):
    write_images(tmp_path, [(8, 8)] * 3)
    data = image_folder_set(ImageDatasetConfig(name="image_folder", root=str(tmp_path),
                                               resolution=8, channels=3, hflip=True))
    assert len(data) == 6
    assert torch.equal(data.uint8_batch(torch.tensor([4]))[0],
                       data.uint8_batch(torch.tensor([1]))[0].flip(-1))


def test_uint8_float_round_trip_is_exact():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_float(pixels)), pixels)


def test_batch_stream_visits_every_sample_once_per_epoch_and_resumes_in_place():
    cfg = ToyDatasetConfig(name="toy_ring8", num_samples=10)
    stream = BatchStream(ToyPoints(cfg), batch_size=4, seed=0)
    seen = torch.cat([stream.next_indices() for _ in range(5)])  # 20 = two epochs
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    state = stream.state_dict()
    expected = [stream.next_indices() for _ in range(3)]
    resumed = BatchStream(ToyPoints(cfg), batch_size=4, seed=0)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, resumed.next_indices()) for a in expected)
