"""The metric numbers a result row holds, and which way is better for each (best-checkpoint
tracking, reports)."""

from __future__ import annotations

# what Evaluator.compute can produce; the rest of a result row is provenance
METRIC_KEYS = ("fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density",
               "coverage", "modes", "hq", "kl")
LOWER_IS_BETTER = frozenset({"fid", "kid", "kl"})


def better(metric: str, new: float, old: float | None) -> bool:
    return old is None or (new < old if metric in LOWER_IS_BETTER else new > old)
