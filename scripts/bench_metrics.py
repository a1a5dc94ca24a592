"""Time our Fréchet distance and KID against the reference tools on the same random features,
and FID + KID end to end (feature extraction included) against torch-fidelity on the same images.

Run from the repository root with the test extras installed (``pip install -e '.[test]'``, or
``PYTHONPATH=.`` instead of the editable install)::

    python scripts/bench_metrics.py            # 10,000 real + 10,000 fake 2048-d features
    python scripts/bench_metrics.py --quick    # 2,000 + 2,000 512-d, one repeat: a smoke run
    python scripts/bench_metrics.py --help     # sizes, repeats, KID subsets, seed
    python scripts/bench_metrics.py --images 10000 --device cuda   # + end to end, 10k + 10k

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
  Target: ours at least as fast (ratio >= 1).
- TF1 resize: the fast path's two matrix products against the reference path's gathers,
  50 images from 64 to 299 px. Target: ours faster.
- End to end (``--images N``): N real + N fake random smooth 64 px images, FID and KID from
  Inception features, ours (``Evaluator.compare``: one pass, inference mode, channels_last on
  CUDA) against ``torch_fidelity.calculate_metrics``, both with the same random Inception
  weights (no download), neither with a cache. Target: ours faster (ratio > 1; aim 1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
KID_TARGET, END_TO_END_TARGET = 1.0, 1.0
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


def bench_resize(repeats: int, count: int = 50) -> list[Timing]:
    """The fast path's fused TF1 resize + scaling against the reference gathers, 64 -> 299 px
    (Inception's input side), on the same images; the value is the output's mean."""
    from gan_runner.metrics.features.inception import RESIZE_MODES, _tf_bilinear_fused

    images = random_images(count, 3)
    label = f"TF1 resize {count} x 64 -> 299 px"
    return [Timing(label, "ours (fast path: fused)",
                   *median_time(lambda: _tf_bilinear_fused(images).mean().item(), repeats)),
            Timing(label, "reference path (gathers)",
                   *median_time(lambda: RESIZE_MODES["tf_bilinear"](images).mean().item(),
                                repeats))]


def bench_kid(
    real: np.ndarray, fake: np.ndarray, repeats: int, subsets: int, size: int, seed: int
) -> list[Timing]:
    candidates = {
        "ours (float32 Gram, float64 sums)": lambda: kernel_inception_distance(
            real, fake, subsets, size, seed
        )[0],
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


class Images(torch.utils.data.Dataset):
    """In-memory uint8 images as the metrics' real data and as torch-fidelity's dataset."""

    def __init__(self, images: torch.Tensor, name: str) -> None:
        from gan_runner.core.spec import DataSpec

        super().__init__()
        self.images, self.description = images, name
        self.spec = DataSpec(tuple(images.shape[1:]))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]

    def uint8_batch(self, indices: torch.Tensor) -> torch.Tensor:
        return self.images[indices]


def random_images(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=generator) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic")
    return smooth.round().clamp(0, 255).to(torch.uint8)


def bench_end_to_end(n: int, device: str, subsets: int, size: int, tmp: str) -> list[Timing]:
    """FID + KID from images: ours and torch-fidelity's, on the same random weights."""
    from torch_fidelity import calculate_metrics

    from gan_runner.metrics.base import MetricsConfig
    from gan_runner.metrics.evaluate import Evaluator
    from gan_runner.metrics.features.random_weights import write_random_inception_weights

    weights = str(write_random_inception_weights(Path(tmp) / "inception.pth"))
    real, fake = Images(random_images(n, 1), "real"), Images(random_images(n, 2), "fake")
    size = min(size, n)

    def ours() -> float:
        cfg = MetricsConfig(names=["fid", "kid"], features="inception",
                            inception_weights=weights, kid_subsets=subsets,
                            kid_subset_size=size, cache_dir=tempfile.mkdtemp(dir=tmp))
        evaluator = Evaluator(cfg, real, "image_folder", torch.device(device))
        return evaluator.compare(fake)["fid"]

    def reference() -> float:
        return calculate_metrics(input1=real, input2=fake, fid=True, kid=True,
                                 cuda=device == "cuda", batch_size=250, verbose=False,
                                 feature_extractor_weights_path=weights, kid_subsets=subsets,
                                 kid_subset_size=size, cache=False)["frechet_inception_distance"]

    label = f"FID + KID end to end ({n} + {n} images, {device})"
    return [Timing(label, "ours (one pass, inference mode)", *median_time(ours, 1)),
            Timing(label, "torch-fidelity", *median_time(reference, 1))]


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
    parser.add_argument("--images", type=int, default=0,
                        help="also FID + KID end to end on this many real and fake images")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
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
    resize = bench_resize(max(args.repeats, 5))
    end_to_end = []
    if args.images:
        with tempfile.TemporaryDirectory() as tmp:
            end_to_end = bench_end_to_end(args.images, args.device, args.kid_subsets,
                                          args.kid_subset_size, tmp)
    console.print(table([*frechet.values(), *kid, *resize, *end_to_end]))
    speedup = frechet[SQRTM_FRECHET].seconds / frechet[OURS_FRECHET].seconds
    verdict = "met" if speedup >= SQRTM_SPEEDUP_TARGET else "MISSED"
    console.print(
        f"Fréchet distance: ours is {speedup:.1f}x faster than sqrtm "
        f"(target >= {SQRTM_SPEEDUP_TARGET:.0f}x: {verdict})"
    )
    for timings, target, what in ((kid, KID_TARGET, "KID"), (resize, 1.0, "TF1 resize"),
                                  (end_to_end, END_TO_END_TARGET, "FID + KID end to end")):
        if timings:
            ratio = timings[1].seconds / timings[0].seconds
            verdict = "met" if ratio >= target else "MISSED"
            console.print(f"{what}: ours is {ratio:.2f}x the speed of "
                          f"{timings[1].implementation} (target >= {target:g}x: {verdict})")


if __name__ == "__main__":
    main()
