"""What a metric is to the rest of the runner, and the registry every metric module fills.

A metric declares the numbers it adds to a result row, which way each of them is better, what
it reads and how it computes them. The config check (``metrics.names``, ``metrics.best``), the
evaluator, best-checkpoint tracking, ``gan-eval`` and ``gan-report`` all read these declarations,
so a new metric is one ``@register_metric`` next to its formula and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from omegaconf import OmegaConf

from gan_runner.core.checks import require, require_choice
from gan_runner.core.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gan_runner.data.datasets import RealData
    from gan_runner.metrics.stats import Shard

T = TypeVar("T")
# extractor outputs of one side: "features" (N, dims), and "logits" (N, classes) when the
# extractor has a classifier
Outputs = dict[str, np.ndarray]
# what a metric reads besides the features: the classifier's logits, the toy mixture's centres,
# the generator itself (path length, diversity: they draw their own samples), or the samples'
# class labels (``Outputs["labels"]``: the real ones, and those the fakes were generated with)
Need = Literal["features", "logits", "centres", "generator", "labels"]
# where a metric without a stated order goes in tables and log lines: after the built-in ones
LAST = 100


@dataclass(frozen=True)
class Result:
    """One number a metric adds to a result row."""

    key: str
    # None for a spread (kid_std, is_std): logged with its mean, never ranked or tabulated
    lower_is_better: bool | None
    label: str = ""  # its title in reports; the key itself when empty
    log_scale: bool = False  # charted on a log axis (FID falls over orders of magnitude)

    @property
    def rankable(self) -> bool:
        return self.lower_is_better is not None

    @property
    def title(self) -> str:
        return self.label or self.key


@dataclass
class MetricContext:
    """What a metric may read besides the real and fake extractor outputs: the options of the
    metrics config, the real dataset (the toy mixture's centres and std), and for a metric that
    needs ``generator`` the generator being evaluated, its truncation and the device.

    ``notes`` is what a metric adds to the row's provenance (KID's subset size actually used,
    PR's feature space): the evaluator clears it before each evaluation.
    """

    cfg: MetricsConfig
    data: RealData
    device: torch.device | None = None
    shard: Shard | None = None  # a sharded evaluation: metrics that draw samples split them
    G: nn.Module | None = None
    psi: float = 1.0
    notes: dict[str, Any] = field(default_factory=dict)
    _from_real: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def note(self, **provenance: Any) -> None:
        self.notes.update(provenance)

    def from_real(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` once per evaluator: its real side never changes between evaluations, so
        what a metric derives from it alone (FID's real statistics) is computed only once."""
        if key not in self._from_real:
            self._from_real[key] = make()
        return self._from_real[key]


# compute(real, fake, context) -> {result key: value} for exactly the metric's result keys
Compute = Callable[[Outputs, Outputs, MetricContext], dict[str, float]]
# space(cfg, main) -> the extractor a metric reads, given the evaluation's main one
# (metrics.features resolved: inception, fmnist or toy)
Space = Callable[["MetricsConfig", str], str]


def main_space(cfg: MetricsConfig, main: str) -> str:
    return main


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``metrics.names`` selects it by ``name``."""

    name: str
    results: tuple[Result, ...]
    needs: frozenset[Need]
    compute: Compute
    order: int  # its place in tables and log lines (then by name): FID first, as papers do
    space: Space = main_space  # the feature space it reads; one pass per space serves all

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.results)


METRICS: Registry[Metric] = Registry("metric")


def registered() -> list[Metric]:
    """Every metric, in the order tables and log lines show them."""
    return sorted((entry.value for entry in METRICS.entries()), key=lambda m: (m.order, m.name))


def results() -> list[Result]:
    """Every result key any metric produces, in table order."""
    return [r for metric in registered() for r in metric.results]


def rankable_keys() -> list[str]:
    """The keys that have a better direction: ``metrics.best`` choices and report columns."""
    return [r.key for r in results() if r.rankable]


def result(key: str) -> Result:
    for r in results():
        if r.key == key:
            return r
    raise KeyError(f"no registered metric produces {key!r}")


def register_metric(name: str, *declared: Result, needs: Iterable[Need] = ("features",),
                    order: int = LAST, space: Space = main_space
                    ) -> Callable[[Compute], Compute]:
    """Decorator: register the decorated function as the compute of metric ``name``.

    A result key that another metric already produces is a bug (rows could not tell the two
    apart), like a name registered twice.
    """

    def add(compute: Compute) -> Compute:
        others = (r.key for metric in registered() if metric.name != name for r in metric.results)
        taken = set(others) & {r.key for r in declared}
        if taken:
            raise ValueError(f"metric {name!r} declares result keys already produced: "
                             f"{', '.join(sorted(taken))}")
        METRICS.register(name)(Metric(name, declared, frozenset(needs), compute, order, space))
        return compute

    return add


@dataclass
class MetricsConfig:
    """Evaluation of the EMA generator: during training every ``every_kimg``, and by gan-eval.

    ``num_fakes`` is the cheap periodic proxy (e.g. 10k); ``final_num_fakes`` (e.g. 50k, the
    papers' count) is used once at the end of training. Real features come from the whole
    ``real_split`` of the training dataset (no subset, no flips) and are cached on disk.

    ``protocol`` names published evaluation protocols (``protocols.py``: fid50k_full, ...) that
    fix the settings they define; a setting they fix may not be changed alongside them.
    ``auto`` (``metrics=auto``) stands for ``metrics=fid`` on images and ``metrics=toy`` on the
    2-D mixtures: ``resolved(dataset_cfg)`` picks.
    """

    names: list[str] = field(default_factory=list)  # registered metrics, as gan-eval --help lists
    auto: bool = False
    protocol: str = ""  # comma-separated protocol names; recorded in every result row
    every_kimg: float = 0.0  # 0 disables periodic evaluation
    features: str = "auto"  # auto | inception | fmnist | toy (and vgg16, dinov2)
    num_fakes: int = 10_000
    final_num_fakes: int | None = None  # null: no separate final evaluation
    num_reals: int | None = None  # null: the whole split
    real_split: str = "train"
    # Inception's input resize: tf_bilinear (TF1 / torch-fidelity), clean (PIL bicubic, as
    # clean-fid) or torch_bilinear (pytorch-fid); checked against the table in inception.py
    resize: str = "tf_bilinear"
    inception_weights: str | None = None
    # other networks' weights files by name (vgg16, alexnet, lpips_vgg, lpips_alex, dinov2);
    # a missing one is found in the cache or downloaded and verified
    weights: dict[str, str] = field(default_factory=dict)
    # mu/sigma of the real side from a file (pytorch-fid, clean-fid or gan-eval save_stats=)
    # instead of the dataset's features: FID (and FD) only
    real_stats: str | None = None
    cache_dir: str | None = None  # real-feature cache; null: $GAN_RUNNER_CACHE or ~/.cache
    best: str = ""  # keep the checkpoint with the best value of this metric (e.g. fid)
    psi: float = 1.0
    batch_size: int = 250
    seed: int = 0  # latents of the fakes: the same images at every evaluation
    fast_extraction: bool = True  # channels_last for Inception and VGG-16 (features to 1e-4)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    pr_k: int = 3
    # auto: VGG-16 fc2 (Kynkäänniemi et al., StyleGAN2-ADA) when the main space is Inception's
    # (natural images), the main space otherwise; or an extractor name
    pr_features: str = "auto"
    dc_k: int = 5
    ppl_samples: int = 50_000
    ppl_epsilon: float = 1e-4  # StyleGAN's
    ppl_crop: bool = True  # StyleGAN (v1) crops to the face; StyleGAN2's ppl2_* do not
    lpips_net: str = "vgg"  # PPL and diversity: vgg (StyleGAN's) | alex
    diversity_pairs: int = 1000

    def __post_init__(self) -> None:
        if self.protocol:
            from gan_runner.metrics.protocols import apply_protocols

            apply_protocols(self)
        for name in self.names:
            require(name in METRICS, "metrics.names", list(self.names),
                    "names from " + ", ".join(metric.name for metric in registered()))
        require(self.every_kimg >= 0, "metrics.every_kimg", self.every_kimg,
                "a non-negative interval in kimg (0 = off)")
        from gan_runner.metrics.features.base import FEATURES

        for key in ("features", "pr_features"):
            value = getattr(self, key)
            require(value == "auto" or value in FEATURES, f"metrics.{key}", value,
                    "auto or one of " + "|".join(FEATURES.names()))
        require_choice("metrics.real_split", self.real_split, ("train", "test"))
        require_choice("metrics.lpips_net", self.lpips_net, ("vgg", "alex"))
        for key in ("num_fakes", "batch_size", "kid_subsets", "is_splits", "pr_k", "dc_k",
                    "ppl_samples", "diversity_pairs"):
            value = getattr(self, key)
            require(value > 0, f"metrics.{key}", value, "a positive count")
        require(self.kid_subset_size >= 2, "metrics.kid_subset_size", self.kid_subset_size,
                "at least 2")
        require(self.ppl_epsilon > 0, "metrics.ppl_epsilon", self.ppl_epsilon,
                "a small positive step")
        for key in ("final_num_fakes", "num_reals"):
            value = getattr(self, key)
            require(value is None or value > 1, f"metrics.{key}", value, "a count > 1 or null")
        rankable = rankable_keys()
        require(self.best in ("", *rankable), "metrics.best", self.best,
                "empty or one of " + ", ".join(rankable))

    def resolved(self, dataset_cfg: Any) -> MetricsConfig:
        """This config with ``auto`` replaced by ``conf/metrics/fid.yaml`` (images) or
        ``toy.yaml`` (datasets of points), the settings given alongside ``auto`` on top.

        The two sets are read from those files, so ``metrics=auto`` stays exactly what
        ``metrics=fid`` or ``metrics=toy`` is. A setting counts as given when it differs from
        the schema's default.
        """
        if not self.auto:
            return self
        points = "resolution" not in {f.name for f in dataclasses.fields(dataset_cfg)}
        option = resources.files("gan_runner.conf") / "metrics" / (
            "toy.yaml" if points else "fid.yaml")
        picked = OmegaConf.to_container(OmegaConf.load(str(option)))
        given = {key: value for key, value in _settings(self).items()
                 if key != "auto" and value != _settings(MetricsConfig())[key]}
        return MetricsConfig(**{**picked, **given})


def _settings(cfg: MetricsConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
