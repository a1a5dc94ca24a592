"""What a metric is to the rest of the runner, and the registry every metric module fills.

A metric declares the numbers it adds to a result row, which way each of them is better, what
it reads and how it computes them. The config check (``metrics.names``, ``metrics.best``), the
evaluator, best-checkpoint tracking, ``gan-eval`` and ``gan-report`` all read these declarations,
so a new metric is one ``@register_metric`` next to its formula and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from gan_runner.core.checks import require, require_choice
from gan_runner.core.registry import Registry

if TYPE_CHECKING:
    from gan_runner.data.datasets import RealData

T = TypeVar("T")
# extractor outputs of one side: "features" (N, dims), and "logits" (N, classes) when the
# extractor has a classifier
Outputs = dict[str, np.ndarray]
# what a metric reads besides the features: the classifier's logits, the toy mixture's centres
Need = Literal["features", "logits", "centres"]
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


@dataclass(frozen=True)
class MetricContext:
    """What a metric may read besides the real and fake extractor outputs: the options of the
    metrics config and the real dataset (the toy mixture's centres and std)."""

    cfg: MetricsConfig
    data: RealData
    _from_real: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def from_real(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` once per evaluator: its real side never changes between evaluations, so
        what a metric derives from it alone (FID's real statistics) is computed only once."""
        if key not in self._from_real:
            self._from_real[key] = make()
        return self._from_real[key]


# compute(real, fake, context) -> {result key: value} for exactly the metric's result keys
Compute = Callable[[Outputs, Outputs, MetricContext], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``metrics.names`` selects it by ``name``."""

    name: str
    results: tuple[Result, ...]
    needs: frozenset[Need]
    compute: Compute
    order: int  # its place in tables and log lines (then by name): FID first, as papers do

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
                    order: int = LAST) -> Callable[[Compute], Compute]:
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
        METRICS.register(name)(Metric(name, declared, frozenset(needs), compute, order))
        return compute

    return add


@dataclass
class MetricsConfig:
    """Evaluation of the EMA generator: during training every ``every_kimg``, and by gan-eval.

    ``num_fakes`` is the cheap periodic proxy (e.g. 10k); ``final_num_fakes`` (e.g. 50k, the
    papers' count) is used once at the end of training. Real features come from the whole
    ``real_split`` of the training dataset (no subset, no flips) and are cached on disk.
    """

    names: list[str] = field(default_factory=list)  # registered metrics, as gan-eval --help lists
    every_kimg: float = 0.0  # 0 disables periodic evaluation
    features: str = "auto"  # auto | inception | fmnist | toy
    num_fakes: int = 10_000
    final_num_fakes: int | None = None  # null: no separate final evaluation
    num_reals: int | None = None  # null: the whole split
    real_split: str = "train"
    # Inception's input resize: tf_bilinear (TF1 / torch-fidelity), clean (PIL bicubic, as
    # clean-fid) or torch_bilinear (pytorch-fid); checked against the table in inception.py
    resize: str = "tf_bilinear"
    inception_weights: str | None = None
    cache_dir: str | None = None  # real-feature cache; null: $GAN_RUNNER_CACHE or ~/.cache
    best: str = ""  # keep the checkpoint with the best value of this metric (e.g. fid)
    psi: float = 1.0
    batch_size: int = 250
    seed: int = 0  # latents of the fakes: the same images at every evaluation
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    pr_k: int = 3
    dc_k: int = 5

    def __post_init__(self) -> None:
        for name in self.names:
            require(name in METRICS, "metrics.names", list(self.names),
                    "names from " + ", ".join(metric.name for metric in registered()))
        require(self.every_kimg >= 0, "metrics.every_kimg", self.every_kimg,
                "a non-negative interval in kimg (0 = off)")
        require_choice("metrics.features", self.features, ("auto", "inception", "fmnist", "toy"))
        require_choice("metrics.real_split", self.real_split, ("train", "test"))
        for key in ("num_fakes", "batch_size", "kid_subsets", "is_splits", "pr_k", "dc_k"):
            value = getattr(self, key)
            require(value > 0, f"metrics.{key}", value, "a positive count")
        require(self.kid_subset_size >= 2, "metrics.kid_subset_size", self.kid_subset_size,
                "at least 2")
        for key in ("final_num_fakes", "num_reals"):
            value = getattr(self, key)
            require(value is None or value > 1, f"metrics.{key}", value, "a count > 1 or null")
        rankable = rankable_keys()
        require(self.best in ("", *rankable), "metrics.best", self.best,
                "empty or one of " + ", ".join(rankable))
