"""The interface every feature extractor offers to the metrics, and the registry that builds them.

Extractors take images exactly as they are stored (uint8), so real images read from disk and
fakes quantized like a saved PNG go through the same preprocessing; what they return carries
enough provenance (``name``, ``sha256`` of the weights, ``resize``) to tell two metric values
apart when they were not computed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from gan_runner.core.registry import Registry


class FeatureExtractor(nn.Module):
    """uint8 images (N, C, H, W) -> ``{"features": (N, feature_dim), "logits": (N, classes)}``.

    ``logits`` is present only when ``num_classes`` is set (Inception Score needs it). The
    extractor is frozen and in eval mode from construction: metrics must never train it.

    ``has_fast_path``: the large ImageNet networks have a faster path with features within
    1e-4 of the reference one: channels_last (1.5x on the CPU for Inception; more on CUDA) and
    the resize and normalization as matrix products (``resize_tf1_bilinear_fused``). The
    evaluator takes it (``use_fast_path``) when ``metrics.fast_extraction`` (the default). The
    small Fashion-MNIST CNN has none, so the default experiment's numbers do not move.
    """

    has_fast_path: ClassVar[bool] = False

    def __init__(self, name: str, sha256: str, resize: str, feature_dim: int,
                 num_classes: int | None) -> None:
        super().__init__()
        self.name = name
        self.sha256 = sha256
        self.resize = resize
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.fast = False

    def use_fast_path(self) -> FeatureExtractor:
        """Switch to the fast path where there is one (features to 1e-4, not bit-identical:
        the cache key and the provenance say which path made them)."""
        if self.has_fast_path:
            self.fast = True
            self.to(memory_format=torch.channels_last)
        return self

    @property
    def extraction(self) -> str:
        """The path, as the provenance and the real-feature cache key name it."""
        return "fast" if self.fast else "reference"

    def freeze(self) -> None:
        """Called by subclasses once their layers exist."""
        self.requires_grad_(False)
        self.eval()

    def in_memory_format(self, x: Tensor) -> Tensor:
        """``x`` laid out like the extractor's conv weights: channels_last on the fast path."""
        return x.contiguous(memory_format=torch.channels_last) if self.fast else x

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError


def check_images(images: Tensor) -> None:
    """Fail early on float or odd-shaped input: a [-1, 1] float image silently cast to uint8
    would give features of a black picture, and a wrong metric instead of an error."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError("feature extractors take uint8 images (N, C, H, W) with C in {1, 3}, "
                         f"got {images.dtype} {tuple(images.shape)}")


@dataclass(frozen=True)
class ExtractorOptions:
    """What the metrics config says about extractors; each extractor uses what concerns it
    (Inception its weights and resize mode, the others their entry in ``weights``)."""

    inception_weights: str | None = None
    resize: str = "tf_bilinear"
    cache_dir: str | None = None
    weights: dict[str, str] = field(default_factory=dict)  # file name key -> explicit path


FEATURES: Registry[Callable[[ExtractorOptions], FeatureExtractor]] = Registry("feature extractor")


def build_extractor(name: str, *, inception_weights: str | None = None,
                    resize: str = "tf_bilinear", cache_dir: str | None = None,
                    weights: dict[str, str] | None = None) -> FeatureExtractor:
    """The extractor called ``name`` (``inception``, ``fmnist``, ``toy``, ``vgg16``,
    ``dinov2``), frozen, on CPU."""
    options = ExtractorOptions(inception_weights, resize, cache_dir, dict(weights or {}))
    return FEATURES.get(name)(options)
