"""The metric numbers a result row holds, and which way is better for each (best-checkpoint
tracking, reports), as the metric registry declares them.

Both read the registry when used instead of copying it at import, so a metric registered after
this module was imported (a plugin, a test) is logged and ranked like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Iterator

from gan_runner.metrics.base import result, results


class ResultKeys:
    """The keys of every registered metric's numbers, in table order; the rest of a result
    row is provenance."""

    def __iter__(self) -> Iterator[str]:
        return (r.key for r in results())


METRIC_KEYS = ResultKeys()


def better(metric: str, new: float, old: float | None) -> bool:
    """Whether ``new`` beats ``old`` (None: no value yet) for the rankable result ``metric``."""
    lower = result(metric).lower_is_better
    if lower is None:
        raise ValueError(f"{metric!r} is a spread, which has no better direction")
    return old is None or (new < old if lower else new > old)
