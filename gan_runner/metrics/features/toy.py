"""The identity "extractor" for the 2-D toy mixtures.

A special case of the interface: its input is float points (N, 2), not uint8 images, and the
points themselves are the features. Fréchet distance, KID and precision/recall then compare the
point clouds directly, which is meaningful in two dimensions where no network is needed.
"""

from __future__ import annotations

from torch import Tensor

from gan_runner.metrics.features.base import FEATURES, ExtractorOptions, FeatureExtractor


class ToyFeatures(FeatureExtractor):
    """(N, 2) float points -> ``{"features": the same points as float32}``; no classifier."""

    def __init__(self) -> None:
        # no weights and no resize: "none" records that in every metric row
        super().__init__("toy", sha256="none", resize="none", feature_dim=2, num_classes=None)
        self.freeze()

    def forward(self, points: Tensor) -> dict[str, Tensor]:
        if points.dim() != 2 or points.shape[1] != 2 or not points.is_floating_point():
            raise ValueError(f"the toy extractor takes float points (N, 2), got {points.dtype} "
                             f"{tuple(points.shape)}")
        return {"features": points.float()}


@FEATURES.register("toy")
def build_toy(options: ExtractorOptions) -> ToyFeatures:
    return ToyFeatures()
