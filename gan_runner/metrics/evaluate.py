"""Metrics of a generator against real data, each row carrying how it was computed.

Used by the training loop (every ``metrics.every_kimg``, on the EMA generator) and by
``gan-eval``. Fakes come from fixed latents (``metrics.seed``), so successive evaluations
differ only because the generator did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gan_runner.core.errors import UserError
from gan_runner.data.datasets import DATASETS, RealData, to_uint8
from gan_runner.metrics.base import Metric, MetricContext, MetricsConfig, Need, Outputs, registered
from gan_runner.metrics.features import build_extractor
from gan_runner.metrics.features.base import FeatureExtractor
from gan_runner.metrics.stats import extract, extractor_input, real_features
from gan_runner.models.base import generate

Advance = Callable[[int], None]
# the datasets the shipped Fashion-MNIST classifier was trained for
FMNIST_LIKE = ("fashion_mnist",)
# a metric's need that this evaluation cannot meet: what is missing, and what to do instead
UNMET: dict[Need, tuple[str, str]] = {
    "logits": ("metrics.features={features} has no classifier",
               "use features=inception or fmnist, or drop '{metric}'"),
    "centres": ("the dataset is not a toy_* mixture", "drop '{metric}' from metrics.names"),
}


def choose_features(name: str, data: RealData, dataset_name: str) -> str:
    if name != "auto":
        return name
    if not data.spec.is_image:
        return "toy"
    return "fmnist" if dataset_name in FMNIST_LIKE else "inception"


def metrics_dataset(dataset_cfg: Any, split: str, loaded: RealData | None = None) -> RealData:
    """The real side of the comparison: the whole split, no subset, no flips; ``loaded`` (the
    training data) is reused when it already is exactly that."""
    real_cfg = dataset_cfg
    if "split" in {f.name for f in dataclasses.fields(dataset_cfg)}:
        real_cfg = dataclasses.replace(dataset_cfg, split=split, max_images=None, hflip=False)
    if loaded is not None and real_cfg == dataset_cfg:
        return loaded
    return DATASETS.get(real_cfg.name)(real_cfg)


def check_needs(metrics: list[Metric], extractor: FeatureExtractor, real: RealData,
                features: str) -> None:
    """Refuse, before any sample is drawn, a metric that reads what this evaluation lacks."""
    offered: set[Need] = {"features"}
    if extractor.num_classes:
        offered.add("logits")
    if hasattr(real, "centers"):
        offered.add("centres")
    for metric in metrics:
        unmet = sorted(metric.needs - offered)
        if unmet:
            problem, hint = UNMET[unmet[0]]
            raise UserError(f"metrics.names has '{metric.name}' but "
                            + problem.format(features=features), hint.format(metric=metric.name))


class Evaluator:
    """Computes ``cfg.names`` for a generator or a set of samples against ``real``; real
    features are computed once and cached on disk."""

    def __init__(self, cfg: MetricsConfig, real: RealData, dataset_name: str,
                 device: torch.device) -> None:
        self.cfg, self.device, self.real = cfg, device, real
        features = choose_features(cfg.features, real, dataset_name)
        self.extractor: FeatureExtractor = build_extractor(
            features, inception_weights=cfg.inception_weights, resize=cfg.resize,
            cache_dir=cfg.cache_dir).to(device).eval()
        # in table order whatever the order of cfg.names, so rows always list keys alike
        self.metrics = [metric for metric in registered() if metric.name in cfg.names]
        check_needs(self.metrics, self.extractor, real, features)
        self.context = MetricContext(cfg, real)
        self._real: Outputs | None = None
        self._real_path = ""

    def _real_features(self, advance: Advance) -> Outputs:
        if self._real is None:
            self._real, path = real_features(self.real, self.cfg.num_reals, self.extractor,
                                             self.cfg.cache_dir, self.cfg.batch_size,
                                             self.device, advance)
            self._real_path = str(path)
        return self._real

    def fake_batches(self, G: nn.Module, count: int, psi: float):
        latents = torch.Generator().manual_seed(self.cfg.seed)
        for start in range(0, count, self.cfg.batch_size):
            z = torch.randn(min(self.cfg.batch_size, count - start), G.z_dim,
                            generator=latents).to(self.device)
            with torch.no_grad():
                samples = generate(G, z, psi)
            yield to_uint8(samples) if samples.dim() == 4 else samples

    def provenance(self, num_fakes: int, psi: float) -> dict[str, Any]:
        return {"features": self.extractor.name, "features_sha256": self.extractor.sha256,
                "resize": self.extractor.resize, "real_data": self.real.description,
                "num_reals": len(self._real["features"]) if self._real else None,
                "num_fakes": num_fakes, "real_stats": self._real_path, "psi": psi}

    @classmethod
    def for_dataset(cls, cfg: MetricsConfig, dataset_cfg: Any, device: torch.device,
                    loaded: RealData | None = None) -> Evaluator:
        """Against the training set's ``metrics.real_split`` (the training loop's case)."""
        return cls(cfg, metrics_dataset(dataset_cfg, cfg.real_split, loaded), dataset_cfg.name,
                   device)

    def __call__(self, G: nn.Module, num_fakes: int | None = None, psi: float | None = None,
                 advance: Advance = lambda n: None) -> dict[str, Any]:
        num_fakes = num_fakes or self.cfg.num_fakes
        psi = self.cfg.psi if psi is None else psi
        was_training = G.training
        G.eval()
        try:
            real = self._real_features(advance)
            fake = extract(self.extractor, self.fake_batches(G, num_fakes, psi), num_fakes,
                           self.device, advance)
        finally:
            G.train(was_training)
        return {**self.compute(real, fake), **self.provenance(num_fakes, psi)}

    def compare(self, fakes: RealData, advance: Advance = lambda n: None) -> dict[str, Any]:
        """Metrics of a fixed set of samples (e.g. a folder of generated images)."""
        real = self._real_features(advance)
        batches = (extractor_input(fakes, torch.arange(i, min(i + self.cfg.batch_size,
                                                              len(fakes))))
                   for i in range(0, len(fakes), self.cfg.batch_size))
        fake = extract(self.extractor, batches, len(fakes), self.device, advance)
        return {**self.compute(real, fake), **self.provenance(len(fakes), 1.0),
                "fake_data": fakes.description}

    def compute(self, real: Outputs, fake: Outputs) -> dict[str, float]:
        """The configured metrics from real and fake extractor outputs."""
        results: dict[str, float] = {}
        for metric in self.metrics:
            values = metric.compute(real, fake, self.context)
            if set(values) != set(metric.keys):  # what ranking and reports rely on
                raise RuntimeError(f"metric {metric.name!r} returned {sorted(values)}, "
                                   f"not its declared keys {sorted(metric.keys)}")
            results.update(values)
        return results

    def work(self, num_fakes: int | None = None) -> int:
        """Samples to push through the extractor (for a progress bar's total)."""
        reals = 0 if self._real is not None else min(self.cfg.num_reals or len(self.real),
                                                      len(self.real))
        return reals + (num_fakes or self.cfg.num_fakes)
