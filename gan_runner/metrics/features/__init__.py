"""Feature extractors for FID, KID, IS and precision/recall: ``build_extractor(name, ...)``.

``inception`` (TF's FID Inception-v3, for natural images), ``fmnist`` (a small classifier
shipped with the package, for 28-32 px grayscale data like Fashion-MNIST) and ``toy`` (the
identity on 2-D points). Importing this package registers every extractor module in it.
"""

from gan_runner.core.registry import import_submodules
from gan_runner.metrics.features.base import FEATURES, FeatureExtractor, build_extractor

import_submodules(__name__, __path__)

__all__ = ["FEATURES", "FeatureExtractor", "build_extractor"]
