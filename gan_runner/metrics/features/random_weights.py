"""Random stand-ins for the FID Inception weights, for machines that cannot fetch the real file.

The tests (which may not download) and the GPU device check (which reaches no network) need an
Inception network that computes like the real one: the same layers and the same keys as
pytorch-fid's weights file, so every code path runs, and numbers that are well-conditioned, so
features are informative. FIDs computed with these are comparable with nothing published; the
file's sha256 goes into every metric row, so they cannot pass for the real weights.

``python -m gan_runner.metrics.features.random_weights FILE`` writes such a file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn


def random_inception_weights(seed: int = 0) -> dict[str, Tensor]:
    """torchvision's Inception-v3 with 1008 classes and no aux head (exactly the FID file's
    keys), made non-degenerate: He-initialized convs, varied BatchNorm affines, and running
    statistics calibrated by one training-mode pass, so every layer sees roughly unit-scale
    inputs instead of exploding or vanishing (features come out around 1 rather than around
    1e3 or 1e-6)."""
    torch.manual_seed(seed)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                          init_weights=False)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.3)
                module.momentum = None  # running stats = the calibration batch's stats
                module.reset_running_stats()
        net.fc.weight.normal_(0.0, 0.05)
        net.fc.bias.normal_(0.0, 1.0)  # large, so logits with and without it differ
        # calibrate on what the network will see: smooth images with some noise, at 299 px
        coarse = torch.rand(2, 3, 8, 8) * 2 - 1
        smooth = nn.functional.interpolate(coarse, size=(299, 299), mode="bicubic")
        net.train()(smooth + 0.1 * torch.randn(2, 3, 299, 299))
    return net.state_dict()


def random_vgg16_weights(seed: int = 0) -> dict[str, Tensor]:
    """torchvision's VGG-16 with its own initialization: the ImageNet file's keys."""
    torch.manual_seed(seed)
    return torchvision.models.vgg16(weights=None).state_dict()


def random_alexnet_weights(seed: int = 0) -> dict[str, Tensor]:
    """torchvision's AlexNet with its own initialization (LPIPS-Alex's backbone)."""
    torch.manual_seed(seed)
    return torchvision.models.alexnet(weights=None).state_dict()


def write_weights(state: dict[str, Tensor], path: Path) -> Path:
    """A plain state dict file, as the published .pth files are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def write_random_inception_weights(path: Path, seed: int = 0) -> Path:
    return write_weights(random_inception_weights(seed), path)


if __name__ == "__main__":
    print(write_random_inception_weights(Path(sys.argv[1])))
