"""VGG-16 fc2 features (4096-d): the space precision/recall are reported in.

Kynkäänniemi et al. (2019) introduced improved precision/recall on VGG-16's second fully
connected layer, StyleGAN2-ADA's ``pr50k3_full`` kept that space, and torch-fidelity computes
it from torchvision's ImageNet VGG-16 (``vgg16-397923af.pth``): TF 1.x bilinear resize to
224x224, ImageNet mean/std, ``fc2`` after its ReLU (torch-fidelity's ``fc2_relu``, its
precision/recall default). This extractor is that computation, the architecture being
torchvision's own; the weights come from ``metrics.weights.vgg16=PATH``, the cache, or
torchvision's URL with the file's sha256 checked.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torchvision
from torch import Tensor

from gan_runner.core.errors import UserError
from gan_runner.metrics.features.base import (
    FEATURES,
    ExtractorOptions,
    FeatureExtractor,
    check_images,
)
from gan_runner.metrics.features.inception import (
    fused_fits,
    resize_tf1_bilinear,
    resize_tf1_bilinear_fused,
)
from gan_runner.metrics.features.weights import load_state_dict, locate_weights

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
# the file's full digest; torchvision's name carries its first 8 hex digits
VGG16_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
HINT = ("download vgg16-397923af.pth (torchvision's ImageNet VGG-16) yourself and pass "
        "metrics.weights.vgg16=PATH")


def imagenet_input(images: Tensor, size: int, fused: bool = False) -> Tensor:
    """uint8 (N, C, H, W) -> float (N, 3, size, size): TF1 bilinear resize on 0-255 values,
    then ImageNet normalization, as torch-fidelity feeds VGG-16 and DINOv2; ``fused``: the
    fast path's resize and normalization in one (features to 1e-4), where it is faster."""
    check_images(images)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255
    if fused and fused_fits(images, size):
        return resize_tf1_bilinear_fused(images, size, 1 / std, -mean / std)
    x = resize_tf1_bilinear(images.float(), size).expand(-1, 3, -1, -1)
    return (x - mean) / std


class VGG16Features(FeatureExtractor):
    """torchvision's VGG-16 up to fc2 and its ReLU: ``features`` (N, 4096); no classifier
    output is kept (IS is Inception's)."""

    has_fast_path = True

    def __init__(self, state_dict: Mapping[str, Tensor], sha256: str) -> None:
        super().__init__("vgg16", sha256, resize=f"tf_bilinear_{INPUT_SIZE}", feature_dim=4096,
                         num_classes=None)
        self.net = torchvision.models.vgg16(weights=None)
        try:
            self.net.load_state_dict(state_dict)
        except RuntimeError as error:
            raise UserError(f"the VGG-16 weights do not fit torchvision's VGG-16: {error}",
                            HINT) from error
        self.net.classifier = self.net.classifier[:5]  # fc1, ReLU, dropout, fc2, ReLU
        self.freeze()

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = self.in_memory_format(imagenet_input(images, INPUT_SIZE, self.fast))
        return {"features": self.net(x)}


@FEATURES.register("vgg16")
def build_vgg16(options: ExtractorOptions) -> VGG16Features:
    path, sha256 = locate_weights(options.weights.get("vgg16"), options.cache_dir, VGG16_URL,
                                  VGG16_SHA256, "metrics.weights.vgg16", HINT)
    return VGG16Features(load_state_dict(path, "VGG-16 weights", HINT), sha256)

