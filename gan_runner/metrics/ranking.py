"""Which way is better for each metric (best-checkpoint tracking, reports)."""

from __future__ import annotations

LOWER_IS_BETTER = frozenset({"fid", "kid", "kl"})


def better(metric: str, new: float, old: float | None) -> bool:
    return old is None or (new < old if metric in LOWER_IS_BETTER else new > old)
