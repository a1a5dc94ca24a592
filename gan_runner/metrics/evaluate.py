"""Metrics of a generator against real data, each row carrying how it was computed.

Used by the training loop (every ``metrics.every_kimg``, on the EMA generator) and by
``gan-eval``. Fakes come from fixed latents (``metrics.seed``), so successive evaluations
differ only because the generator did.

Each metric reads one feature space (``Metric.space``: FID the main extractor, precision/recall
VGG-16 on natural images, ``*_dinov2`` DINOv2's); the evaluator builds each extractor once and
pushes every real and fake batch through all of them in one pass. With a ``Shard`` each rank
generates and extracts every size-th batch and the features are gathered, so every rank ends
with the rows one process would compute, in the same order, and the same numbers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gan_runner.core.errors import UserError
from gan_runner.data.datasets import DATASETS, RealData, to_uint8
from gan_runner.metrics.base import Metric, MetricContext, MetricsConfig, Need, Outputs, registered
from gan_runner.metrics.features import build_extractor
from gan_runner.metrics.features.base import FeatureExtractor
from gan_runner.metrics.frechet import FeatureStats
from gan_runner.metrics.stats import (
    ALONE,
    Batches,
    Shard,
    cache_path,
    extract,
    extractor_input,
    load_cached,
    real_order,
    save_cached,
    stats_key,
)
from gan_runner.models.base import generate, num_classes, sample_classes, sample_latents

Advance = Callable[[int], None]
# the datasets the shipped Fashion-MNIST classifier was trained for
FMNIST_LIKE = ("fashion_mnist",)
# a metric's need that this evaluation cannot meet: what is missing, and what to do instead
UNMET: dict[Need, tuple[str, str]] = {
    "logits": ("metrics.features={features} has no classifier",
               "use features=inception or fmnist, or drop '{metric}'"),
    "centres": ("the dataset is not a toy_* mixture", "drop '{metric}' from metrics.names"),
    "generator": ("it draws its own samples from a generator, and a folder has none",
                  "evaluate a checkpoint (ckpt=), or drop '{metric}'"),
    "labels": ("the real data has no class labels",
               "use a labelled dataset (dataset.labels=folders for a folder of classes), or "
               "drop '{metric}'"),
}
# the metrics that can run on mu/sigma alone (metrics.real_stats)
STATS_ONLY = ("fid",)
log = logging.getLogger(__name__)


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


def check_needs(metrics: list[Metric], extractors: dict[str, FeatureExtractor],
                spaces: dict[str, str], real: RealData, features: str,
                generator: bool = True) -> None:
    """Refuse, before any sample is drawn, a metric that reads what this evaluation lacks."""
    for metric in metrics:
        offered: set[Need] = {"features"}
        if generator:
            offered.add("generator")
        if metric.name in spaces and extractors[spaces[metric.name]].num_classes:
            offered.add("logits")
        if hasattr(real, "centers"):
            offered.add("centres")
        if getattr(real, "labels", None) is not None and generator:
            offered.add("labels")
        unmet = sorted(metric.needs - offered)
        if unmet:
            problem, hint = UNMET[unmet[0]]
            raise UserError(f"metrics.names has '{metric.name}' but "
                            + problem.format(features=features), hint.format(metric=metric.name))


def load_real_stats(path: str, extractor: FeatureExtractor) -> FeatureStats:
    """A reference statistics file checked against the extractor it will be compared in."""
    stats = FeatureStats.load(path)
    dim = stats.mu.shape[0]
    if dim != extractor.feature_dim:
        raise UserError(f"metrics.real_stats={path} holds {dim}-d statistics and "
                        f"metrics.features={extractor.name} gives {extractor.feature_dim}-d ones",
                        "use statistics made with the same feature extractor")
    made_with = stats.meta.get("extractor")
    if made_with is not None and (made_with, stats.meta.get("extractor_sha256")) != (
            extractor.name, extractor.sha256):
        raise UserError(f"metrics.real_stats={path} was made with {made_with} "
                        f"(sha256 {stats.meta.get('extractor_sha256', '?')[:12]}...), this "
                        f"evaluation uses {extractor.name} ({extractor.sha256[:12]}...)",
                        "use the same features and weights as the statistics")
    if made_with is None:
        log.warning("metrics.real_stats=%s does not say which network made it (a pytorch-fid "
                    "or clean-fid file): its FID compares with ours only if that was %s with "
                    "weights %s and resize %s", path, extractor.name, extractor.sha256[:12],
                    extractor.resize)
    return stats


class Evaluator:
    """Computes ``cfg.names`` for a generator or a set of samples against ``real``; real
    features are computed once and cached on disk."""

    def __init__(self, cfg: MetricsConfig, real: RealData, dataset_name: str,
                 device: torch.device, shard: Shard = ALONE) -> None:
        self.cfg, self.device, self.real, self.shard = cfg, device, real, shard
        self.main = choose_features(cfg.features, real, dataset_name)
        # in table order whatever the order of cfg.names, so rows always list keys alike
        self.metrics = [metric for metric in registered() if metric.name in cfg.names]
        self.spaces = {metric.name: metric.space(cfg, self.main) for metric in self.metrics
                       if "generator" not in metric.needs}
        self.extractors: dict[str, FeatureExtractor] = {}
        for space in dict.fromkeys(self.spaces.values()):
            self.extractors[space] = self._build(space)
        check_needs(self.metrics, self.extractors, self.spaces, real, self.main)
        self.context = MetricContext(cfg, real, device, shard)
        self.stats_file: FeatureStats | None = None
        if cfg.real_stats:
            self._use_stats_file(cfg.real_stats)
        self._real: dict[str, Outputs] | None = None
        self._fake_labels: list[torch.Tensor] = []  # of the last generation, in batch order
        self._real_paths: dict[str, str] = {}

    def _build(self, space: str) -> FeatureExtractor:
        cfg = self.cfg
        extractor = build_extractor(space, inception_weights=cfg.inception_weights,
                                    resize=cfg.resize, cache_dir=cfg.cache_dir,
                                    weights=dict(cfg.weights)).to(self.device).eval()
        return extractor.use_fast_path() if cfg.fast_extraction else extractor

    def _use_stats_file(self, path: str) -> None:
        """The real side of FID from mu/sigma: only metrics that need nothing else may run."""
        others = [m.name for m in self.metrics
                  if m.name not in STATS_ONLY and "generator" not in m.needs]
        if others:
            raise UserError(f"metrics.real_stats gives only mu and sigma, and "
                            f"{', '.join(others)} need the real features",
                            "drop metrics.real_stats, or evaluate only fid with it")
        if "fid" in self.spaces:
            self.stats_file = load_real_stats(path, self.extractors[self.spaces["fid"]])
            self.context.from_real("fid", lambda: self.stats_file)

    def _real_spaces(self) -> dict[str, FeatureExtractor]:
        """The extractors whose real features this evaluation reads."""
        if self.stats_file is not None:
            return {}
        return self.extractors

    def _real_features(self, advance: Advance) -> dict[str, Outputs]:
        """Per feature space, from the cache or from one pass over the real data that fills
        every missing space at once (sharded like the fakes; rank 0 writes the cache)."""
        if self._real is not None:
            return self._real
        spaces = self._real_spaces()
        count = min(self.cfg.num_reals or len(self.real), len(self.real))
        paths = {space: cache_path(self.real, count, extractor, self.cfg.cache_dir)
                 for space, extractor in spaces.items()}
        found = {space: cached for space, path in paths.items()
                 if (cached := load_cached(path)) is not None}
        # rank 0's view decides, so every rank joins the same gather
        missing = self.shard.all_gather(sorted(set(spaces) - set(found)))[0]
        found = {space: found[space] for space in spaces if space not in missing}
        if missing:
            log.info("computing the real features (%s) of %d samples of %s, once: they are "
                     "cached for later evaluations", ", ".join(missing), count,
                     self.real.description)
            order, size = real_order(len(self.real), count), self.cfg.batch_size
            batches = ((i, extractor_input(self.real, order[start:start + size]))
                       for i, start in enumerate(range(0, count, size)) if self.shard.owns(i))
            computed = extract({space: spaces[space] for space in missing}, batches,
                               self.device, self.shard, advance)
            for space, outputs in computed.items():
                if self.shard.rank == 0:
                    save_cached(paths[space], stats_key(self.real, count, spaces[space]),
                                outputs)
                found[space] = outputs
        else:
            advance(count)
        labels = getattr(self.real, "labels", None)
        if labels is not None:  # in the order the features were taken: cheap, never cached
            ordered = labels[real_order(len(self.real), count)].numpy()
            found = {space: {**outputs, "labels": ordered} for space, outputs in found.items()}
        self._real, self._real_paths = found, {space: str(p) for space, p in paths.items()}
        return found

    def fake_batches(self, G: nn.Module, count: int, psi: float) -> Batches:
        """This rank's batches of fakes, each with its global index. Every rank draws every
        batch's latents (cheap), so batch i holds the same samples however many ranks share
        the work; this is the one place fakes are made."""
        latents = torch.Generator().manual_seed(self.cfg.seed)
        self._fake_labels = []
        for index, start in enumerate(range(0, count, self.cfg.batch_size)):
            n = min(self.cfg.batch_size, count - start)
            z = sample_latents(G, n, latents)
            # a conditional G's labels follow the real label distribution
            c = sample_classes(G, n, latents, counts=self.real.spec.class_counts)
            if c is not None:  # every rank draws every batch's: all know every fake's label
                self._fake_labels.append(c)
            if not self.shard.owns(index):
                continue
            with torch.no_grad():
                samples = generate(G, z.to(self.device), psi,
                                   None if c is None else c.to(self.device))
            yield index, to_uint8(samples) if samples.dim() == 4 else samples

    def provenance(self, num_fakes: int, psi: float) -> dict[str, Any]:
        main = self.extractors.get(self.main)
        real = self._real or {}
        first = next(iter(real.values()), {}).get("features")
        row: dict[str, Any] = {
            "features": self.main, "features_sha256": main.sha256 if main else None,
            "resize": main.resize if main else None,
            "extraction": main.extraction if main else None, "real_data": self.real.description,
            "num_reals": len(first) if first is not None else (
                self.stats_file.count if self.stats_file else None),
            "num_fakes": num_fakes,
            "real_stats": (self.cfg.real_stats if self.stats_file is not None
                           else self._real_paths.get(self.main, "")),
            "psi": psi, "protocol": self.cfg.protocol or None}
        for name, space in self.spaces.items():
            if space != self.main:
                extractor = self.extractors[space]
                row[f"{name}_features"] = space
                row[f"{space}_sha256"] = extractor.sha256
                row[f"real_stats_{space}"] = self._real_paths.get(space, "")
        return {**row, **self.context.notes}

    @classmethod
    def for_dataset(cls, cfg: MetricsConfig, dataset_cfg: Any, device: torch.device,
                    loaded: RealData | None = None, shard: Shard = ALONE) -> Evaluator:
        """Against the training set's ``metrics.real_split`` (the training loop's case)."""
        cfg = cfg.resolved(dataset_cfg)
        return cls(cfg, metrics_dataset(dataset_cfg, cfg.real_split, loaded), dataset_cfg.name,
                   device, shard)

    def __call__(self, G: nn.Module, num_fakes: int | None = None, psi: float | None = None,
                 advance: Advance = lambda n: None) -> dict[str, Any]:
        num_fakes = num_fakes or self.cfg.num_fakes
        psi = self.cfg.psi if psi is None else psi
        labelled = [m.name for m in self.metrics if "labels" in m.needs]
        if labelled and not num_classes(G):
            raise UserError(f"metrics.names has '{labelled[0]}', which compares classes, and "
                            "this generator is not class-conditional",
                            f"drop '{labelled[0]}', or evaluate a conditional model")
        was_training = G.training
        G.eval()
        try:
            real = self._real_features(advance)
            fake = extract(self.extractors, self.fake_batches(G, num_fakes, psi), self.device,
                           self.shard, advance) if self.extractors else {}
            if self._fake_labels:
                labels = torch.cat(self._fake_labels).numpy()
                fake = {space: {**outputs, "labels": labels} for space, outputs in fake.items()}
            self.context.G, self.context.psi = G, psi
            results = self.compute(real, fake)
        finally:
            self.context.G = None
            G.train(was_training)
        return {**results, **self.provenance(num_fakes, psi)}

    def compare(self, fakes: RealData, advance: Advance = lambda n: None) -> dict[str, Any]:
        """Metrics of a fixed set of samples (e.g. a folder of generated images)."""
        check_needs(self.metrics, self.extractors, self.spaces, self.real, self.main,
                    generator=False)
        real = self._real_features(advance)
        size = self.cfg.batch_size
        batches = ((i, extractor_input(fakes, torch.arange(start, min(start + size,
                                                                     len(fakes)))))
                   for i, start in enumerate(range(0, len(fakes), size)) if self.shard.owns(i))
        fake = extract(self.extractors, batches, self.device, self.shard, advance)
        return {**self.compute(real, fake), **self.provenance(len(fakes), 1.0),
                "fake_data": fakes.description}

    def compute(self, real: dict[str, Outputs], fake: dict[str, Outputs]) -> dict[str, float]:
        """The configured metrics from each feature space's real and fake outputs."""
        self.context.notes = {}
        results: dict[str, float] = {}
        for metric in self.metrics:
            space = self.spaces.get(metric.name)
            values = metric.compute(real.get(space, {}), fake.get(space, {}), self.context)
            if set(values) != set(metric.keys):  # what ranking and reports rely on
                raise RuntimeError(f"metric {metric.name!r} returned {sorted(values)}, "
                                   f"not its declared keys {sorted(metric.keys)}")
            results.update(values)
        return results

    def real_stats(self, advance: Advance = lambda n: None) -> FeatureStats:
        """mu/sigma of the real features in FID's space, with how they were made: what
        ``gan-eval save_stats=FILE.npz`` writes (pytorch-fid's and clean-fid's format)."""
        if "fid" not in self.spaces or self.stats_file is not None:
            raise UserError("saving real statistics needs fid among the metrics and the "
                            "real data (not metrics.real_stats)", "add fid to metrics=")
        space = self.spaces["fid"]
        extractor = self.extractors[space]
        features = self._real_features(advance)[space]["features"]
        stats = FeatureStats.from_features(features)
        meta = {"extractor": extractor.name, "extractor_sha256": extractor.sha256,
                "resize": extractor.resize, "dataset": self.real.description}
        return FeatureStats(stats.mu, stats.sigma, stats.count, meta)

    def work(self, num_fakes: int | None = None) -> int:
        """Samples to push through the extractors (for a progress bar's total)."""
        reals = 0 if self._real is not None or not self._real_spaces() else min(
            self.cfg.num_reals or len(self.real), len(self.real))
        fakes = (num_fakes or self.cfg.num_fakes) if self.extractors else 0
        return reals + fakes

