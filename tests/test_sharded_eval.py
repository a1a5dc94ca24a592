"""One feature pass per extractor serves every metric, and a sharded evaluation (each rank
generates and extracts its share, the features are gathered) gives one process's numbers
(issue 19, part 7)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from gan_runner.data.toy import ToyDatasetConfig
from gan_runner.metrics.base import METRICS, MetricsConfig, Result, register_metric
from gan_runner.metrics.evaluate import Evaluator
from gan_runner.metrics.features.base import FEATURES, FeatureExtractor
from gan_runner.metrics.features.toy import ToyFeatures
from gan_runner.metrics.stats import Shard

DATA = ToyDatasetConfig(name="toy_ring8", num_samples=700, std=0.02, seed=1)
NAMES = ["toy", "fid", "kid", "pr", "dc"]


class SpreadGenerator(torch.nn.Module):
    """Deterministic in z: the numbers depend only on which latents each batch holds."""

    z_dim = 2

    def forward(self, z: Tensor) -> Tensor:
        return 2.0 * torch.tanh(z)


def config(cache: Path) -> MetricsConfig:
    return MetricsConfig(names=NAMES, num_fakes=530, batch_size=100, kid_subsets=5,
                         kid_subset_size=200, cache_dir=str(cache))


def lpips_config(folder: Path) -> MetricsConfig:
    """Path length and diversity with LPIPS-Alex on a random backbone (written once)."""
    from test_lpips import package_linear

    from gan_runner.metrics.features.random_weights import random_alexnet_weights, write_weights

    backbone = folder / "alexnet.pth"
    if not backbone.exists():
        write_weights(random_alexnet_weights(), backbone)
    return MetricsConfig(names=["ppl_zfull", "diversity"], lpips_net="alex", ppl_samples=20,
                         diversity_pairs=20, batch_size=6, cache_dir=str(folder),
                         weights={"alexnet": str(backbone),
                                  "lpips_alex": str(package_linear("alex"))})


def drawn_evaluations(cache: Path, shard: Shard | None = None) -> dict:
    """The toy metrics of a point generator, then PPL and diversity of an image generator."""
    from test_lpips import SmoothGenerator

    options = {} if shard is None else {"shard": shard}
    results = Evaluator.for_dataset(config(cache), DATA, torch.device("cpu"),
                                    **options)(SpreadGenerator())
    torch.manual_seed(0)  # the same image generator in every process
    G = SmoothGenerator()
    results.update(Evaluator.for_dataset(lpips_config(cache.parent), DATA, torch.device("cpu"),
                                         **options)(G))
    return results


def evaluate_rank(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        results = drawn_evaluations(Path(out).parent / "cache-2", Shard.of_process_group())
        Path(f"{out}.{rank}").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # 21 s: two spawned processes import torch and gan_runner
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built")
def test_two_gloo_processes_give_the_value_of_one(tmp_path):
    pytest.importorskip("lpips")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: conv kernels' sums depend on the thread count
    try:
        expected = drawn_evaluations(tmp_path / "cache-1")
    finally:
        torch.set_num_threads(threads)
    mp.spawn(evaluate_rank, args=(str(tmp_path / "store"), str(tmp_path / "r")), nprocs=2)
    for rank in (0, 1):  # every rank ends with the whole result
        got = json.loads(Path(f"{tmp_path / 'r'}.{rank}").read_text())
        for key in ("modes", "hq", "kl", "fid", "kid", "precision", "recall", "density",
                    "coverage", "num_fakes", "num_reals", "ppl_zfull", "lpips_diversity"):
            assert got[key] == expected[key], key
    assert sorted(os.listdir(tmp_path / "cache-2" / "stats")) == sorted(
        os.listdir(tmp_path / "cache-1" / "stats"))  # rank 0 wrote the same real features


class CountingToy(ToyFeatures):
    """The toy extractor under another name, counting the batches it sees."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.batches = name, 0

    def forward(self, points: Tensor) -> dict[str, Tensor]:
        self.batches += 1
        return super().forward(points)


class CountingGenerator(SpreadGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def forward(self, z: Tensor) -> Tensor:
        self.batches += 1
        return super().forward(z)


def test_one_generation_and_one_pass_per_extractor_serve_every_metric(tmp_path):
    built: dict[str, FeatureExtractor] = {}
    FEATURES.register("other_space")(lambda options: built.setdefault("x",
                                                                      CountingToy("other")))
    register_metric("other_fid", Result("other_fid", lower_is_better=True),
                    space=lambda cfg, main: "other_space")(
        lambda real, fake, context: {"other_fid": 0.0})
    try:
        cfg = MetricsConfig(names=[*NAMES, "other_fid"], num_fakes=530, batch_size=100,
                            kid_subsets=5, kid_subset_size=200, cache_dir=str(tmp_path))
        evaluator = Evaluator.for_dataset(cfg, DATA, torch.device("cpu"))
        assert sorted(evaluator.extractors) == ["other_space", "toy"]
        G = CountingGenerator()
        row = evaluator(G)
        assert G.batches == 6  # 530 fakes in batches of 100, once for both spaces
        assert built["x"].batches == 6 + 7  # 700 reals (first evaluation) and the 530 fakes
        assert row["other_fid_features"] == "other_space" and "fid" in row
    finally:
        METRICS.unregister("other_fid")
        FEATURES.unregister("other_space")
