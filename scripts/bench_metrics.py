"""Time our Fréchet distance and KID against the reference tools on the same random features.

Run from the repository root with the test extras installed (``pip install -e '.[test]'``, or
``PYTHONPATH=.`` instead of the editable install)::

    python scripts/bench_metrics.py            # 10,000 real + 10,000 fake 2048-d features
    python scripts/bench_metrics.py --quick    # 2,000 + 2,000 512-d, one repeat: a smoke run
    python scripts/bench_metrics.py --help     # sizes, repeats, KID subsets, seed

On a shared or busy machine, pin every library to one thread for stable numbers::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python scripts/bench_metrics.py

(multi-threaded LAPACK eigensolvers, ours and torch-fidelity's, slow down 5-20x when other
processes oversubscribe the cores, which would measure the neighbours rather than the code).

It prints one table row per implementation: the median wall time over the repeats
(time.perf_counter), the value, its relative difference from ours and the time ratio
(reference time / our time, so > 1 means ours is faster), then whether ours meets the target
of being at least 5x faster than pytorch-fid's scipy.linalg.sqrtm-based Fréchet distance.

- Fréchet distance: all three get the same float64 statistics (computed once, untimed).
- KID: ``num_subsets`` subsets of ``subset_size``, the same seed for both; torch-fidelity draws
  the same subsets, so values differ only by its float32 arithmetic on float32 features.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from rich.console import Console
from rich.table import Table
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

from gan_runner.metrics.frechet import FeatureStats, frechet_distance
from gan_runner.metrics.kid import kernel_inception_distance

SQRTM_SPEEDUP_TARGET = 5.0
QUICK = {"n": 2000, "dim": 512, "repeats": 1, "kid_subsets": 10, "kid_subset_size": 500}
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
OURS_FRECHET, SQRTM_FRECHET = "ours (cholesky + eigvalsh)", "pytorch-fid (sqrtm)"


@dataclass(frozen=True)
class Timing:
    metric: str
    implementation: str
    seconds: float
    value: float


def median_time(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Median seconds over ``repeats`` calls, and the value of the last call."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def random_features(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative correlated float32 features, like pooled CNN activations."""
    rng = np.random.default_rng(seed)
    mixing = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)

    def draw(shift: float) -> np.ndarray:
        z = rng.standard_normal((n, dim), dtype=np.float32)
        return np.maximum(z @ mixing + shift, 0)

    return draw(0.3), draw(0.35)


def bench_frechet(real: np.ndarray, fake: np.ndarray, repeats: int) -> list[Timing]:
    a, b = FeatureStats.from_features(real), FeatureStats.from_features(fake)
    stats_a, stats_b = {"mu": a.mu, "sigma": a.sigma}, {"mu": b.mu, "sigma": b.sigma}
    candidates = {
        OURS_FRECHET: lambda: frechet_distance(a, b),
        SQRTM_FRECHET: lambda: float(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma)),
        "torch-fidelity (eigvals)": lambda: fid_statistics_to_metric(
            stats_a, stats_b, verbose=False
        )[KEY_METRIC_FID],
    }
    return [
        Timing("Fréchet distance", name, *median_time(fn, repeats))
        for name, fn in candidates.items()
    ]


def bench_kid(
    real: np.ndarray, fake: np.ndarray, repeats: int, subsets: int, size: int, seed: int
) -> list[Timing]:
    candidates = {
        "ours (float64)": lambda: kernel_inception_distance(real, fake, subsets, size, seed)[0],
        "torch-fidelity (float32)": lambda: kid_features_to_metric(
            torch.from_numpy(real),
            torch.from_numpy(fake),
            kid_subsets=subsets,
            kid_subset_size=size,
            rng_seed=seed,
            verbose=False,
        )[KEY_METRIC_KID_MEAN],
    }
    label = f"KID ({subsets} x {size})"
    return [Timing(label, name, *median_time(fn, repeats)) for name, fn in candidates.items()]


def table(timings: list[Timing]) -> Table:
    out = Table(title="Metric formulas: ours vs reference tools")
    out.add_column("metric")
    out.add_column("implementation")
    for column in ("median s", "value", "rel. diff", "ref/ours"):
        out.add_column(column, justify="right")
    ours = {t.metric: t for t in timings if t.implementation.startswith("ours")}
    for t in timings:
        base = ours[t.metric]
        out.add_row(
            t.metric,
            t.implementation,
            f"{t.seconds:.3f}",
            f"{t.value:.10g}",
            f"{abs(t.value - base.value) / abs(base.value):.1e}",
            f"{t.seconds / base.seconds:.2f}x",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="real and fake samples each")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"small smoke run: {QUICK}")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)

    console = Console(width=110)  # rich wraps at 80 columns when piped, splitting the table
    threads = " ".join(f"{v}={os.environ.get(v, 'unset')}" for v in THREAD_VARIABLES)
    console.print(
        f"{args.n} real + {args.n} fake x {args.dim}-d float32 features, median of "
        f"{args.repeats}\n{os.cpu_count()} CPUs; {threads}"
    )
    real, fake = random_features(args.n, args.dim, args.seed)
    frechet = {t.implementation: t for t in bench_frechet(real, fake, args.repeats)}
    kid = bench_kid(real, fake, args.repeats, args.kid_subsets, args.kid_subset_size, args.seed)
    console.print(table([*frechet.values(), *kid]))
    speedup = frechet[SQRTM_FRECHET].seconds / frechet[OURS_FRECHET].seconds
    verdict = "met" if speedup >= SQRTM_SPEEDUP_TARGET else "MISSED"
    console.print(
        f"Fréchet distance: ours is {speedup:.1f}x faster than sqrtm "
        f"(target >= {SQRTM_SPEEDUP_TARGET:.0f}x: {verdict})"
    )


if __name__ == "__main__":
    main()
