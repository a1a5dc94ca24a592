"""The shipped Fashion-MNIST classifier: accurate, identified by its file's hash, and reading
28 px images and 32 px padded GAN samples the same way."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_runner.data import fashion_mnist
from gan_runner.metrics.features import build_extractor, fmnist

from conftest import needs_fmnist

SHIPPED = Path(fmnist.__file__).with_name(fmnist.WEIGHTS_FILE)


@pytest.fixture(scope="module")
def extractor() -> fmnist.FmnistFeatures:
    return build_extractor("fmnist")


@pytest.fixture(scope="module")
def test_split() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = fashion_mnist.load(None, "test")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels)


def test_the_shipped_file_is_small_and_its_hash_is_the_provenance(extractor) -> None:
    assert SHIPPED.stat().st_size < 1_000_000
    assert extractor.sha256 == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert (extractor.name, extractor.feature_dim, extractor.num_classes) == ("fmnist", 128, 10)


@needs_fmnist
def test_classifies_the_test_split_with_at_least_90_percent_accuracy(extractor,
                                                                     test_split) -> None:
    images, labels = test_split
    with torch.no_grad():
        predicted = torch.cat([extractor(images[i:i + 2000])["logits"].argmax(1)
                               for i in range(0, len(images), 2000)])
    accuracy = (predicted == labels).float().mean().item()
    print(f"test accuracy {accuracy:.4f}")
    assert accuracy >= 0.90


@needs_fmnist
def test_a_padded_32px_sample_gives_the_features_of_the_28px_image(extractor,
                                                                   test_split) -> None:
    """The data layer's ``fit=pad`` puts each image on a black 32x32 canvas, 2 px each side;
    the classifier must see the original pixels, not a shrunken or shifted item."""
    images = test_split[0][:16]
    padded = F.pad(images, (2, 2, 2, 2))
    with torch.no_grad():
        at_28, at_32 = extractor(images), extractor(padded)
    assert at_32["features"].shape == (16, 128) and at_32["logits"].shape == (16, 10)
    assert at_32["features"].dtype == torch.float32
    torch.testing.assert_close(at_32, at_28)


def test_rgb_input_is_read_as_its_gray_level(extractor) -> None:
    gray = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(extractor(gray.expand(-1, 3, -1, -1)), extractor(gray))


def test_smaller_images_are_upsampled_to_28px(extractor) -> None:
    images = torch.randint(0, 256, (3, 1, 16, 16), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = extractor(images)
    assert out["features"].shape == (3, 128) and out["logits"].shape == (3, 10)
    assert np.isfinite(out["features"].numpy()).all()
