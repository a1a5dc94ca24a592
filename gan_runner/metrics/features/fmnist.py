"""A small Fashion-MNIST classifier as the feature extractor for 28-32 px grayscale data.

Inception features of 28 px clothes upsampled to 299 px say little about them, so for
Fashion-MNIST-like data FID, KID and IS use this CNN instead: its penultimate layer (128-d) is
``features`` and its 10-way output ``logits``. It was trained on the train split only by
``scripts/train_fmnist_classifier.py``, and ``fmnist_classifier.pt`` ships in the package, so
numbers are comparable across machines; its hash is the extractor's ``sha256``.

How a sample reaches the classifier's 28x28 input (``classifier_input``): RGB becomes ITU-R 601
luma; an image at least 28 px on each side is center-cropped to 28x28, which exactly undoes the
``fit=pad`` that puts the 28 px images on a black 32x32 (or larger) canvas, so a 32x32 GAN sample
is read at the pixels where real data has content; a smaller image is bilinearly upsampled to
28x28. Reals and fakes take the same path, so the comparison is consistent whatever the fit;
with ``fit=resize`` at 32 px the crop loses a 2 px border of content.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import torch.nn.functional as F
from torch import Tensor, nn

from gan_runner.core.safe_load import torch_load_plain
from gan_runner.data.images import LUMA
from gan_runner.metrics.features.base import (
    FEATURES,
    ExtractorOptions,
    FeatureExtractor,
    check_images,
)

SIZE = 28
FEATURE_DIM = 128
NUM_CLASSES = 10
WEIGHTS_FILE = "fmnist_classifier.pt"


def classifier_input(images: Tensor) -> Tensor:
    """uint8 (N, C, H, W) -> float (N, 1, 28, 28) in [-1, 1]: what the classifier was trained on."""
    check_images(images)
    x = images.float()
    if x.shape[1] == 3:
        x = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    h, w = x.shape[-2:]
    if min(h, w) >= SIZE:
        top, left = (h - SIZE) // 2, (w - SIZE) // 2
        x = x[..., top:top + SIZE, left:left + SIZE]
    else:
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return x / 127.5 - 1


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.MaxPool2d(2)]


class FashionCNN(nn.Module):
    """Three conv stages (28 -> 14 -> 7 -> 3) and a 128-d embedding: ~100k parameters, small
    enough to ship (~0.4 MB) and to train on a CPU in minutes, yet above 90% test accuracy."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(1, 16), *_conv(16, 32), *_conv(32, 64), nn.Flatten(),
                                  nn.Linear(64 * 3 * 3, FEATURE_DIM), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, NUM_CLASSES))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """float (N, 1, 28, 28) -> (features, logits)."""
        features = self.body(x)
        return features, self.head(features)


class FmnistFeatures(FeatureExtractor):
    """The shipped classifier behind the extractor interface."""

    def __init__(self, state_dict: dict[str, Tensor], sha256: str) -> None:
        super().__init__("fmnist", sha256, resize=f"center_crop_{SIZE}",
                         feature_dim=FEATURE_DIM, num_classes=NUM_CLASSES)
        self.net = FashionCNN()
        self.net.load_state_dict(state_dict)
        self.freeze()

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features, logits = self.net(classifier_input(images))
        return {"features": features, "logits": logits}


@FEATURES.register("fmnist")
def build_fmnist(options: ExtractorOptions) -> FmnistFeatures:
    data = (resources.files(__package__) / WEIGHTS_FILE).read_bytes()
    state_dict = torch_load_plain(data, f"the shipped classifier {WEIGHTS_FILE}",
                                  "reinstall gan_runner")
    return FmnistFeatures(state_dict, hashlib.sha256(data).hexdigest())
