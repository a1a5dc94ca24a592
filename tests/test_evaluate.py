"""Evaluation of a generator: metric values, their provenance, the real-feature cache, and
metrics during training."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from gan_runner.data.toy import ToyDatasetConfig, ToyPoints
from gan_runner.metrics import evaluate
from gan_runner.metrics.base import MetricsConfig
from gan_runner.metrics.evaluate import Evaluator
from gan_runner.storage.runlog import read_rows

from conftest import TINY_TOY


class ReplayGenerator(nn.Module):
    """Returns real samples: an ideal generator for the metrics to recognise."""

    z_dim = 2

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__()
        self.points = points
        self.calls = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        start = self.calls
        self.calls += len(z)
        return self.points[start:start + len(z)]


class CollapsedGenerator(nn.Module):
    """Every sample at one mode: the failure the toy metrics exist to catch."""

    z_dim = 2

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((len(z), 2), 2.0) + 0.01 * z


def toy_evaluator(tmp_path, **overrides) -> tuple[Evaluator, ToyPoints]:
    data_cfg = ToyDatasetConfig(name="toy_ring8", num_samples=4000, std=0.02, seed=1)
    cfg = MetricsConfig(names=["toy", "fid", "kid", "pr", "dc"], num_fakes=2000,
                        cache_dir=str(tmp_path / "cache"), kid_subsets=10, kid_subset_size=500,
                        **overrides)
    return Evaluator.for_dataset(cfg, data_cfg, torch.device("cpu")), ToyPoints(data_cfg)


def test_a_generator_that_replays_real_data_scores_as_perfect(tmp_path):
    evaluator, _ = toy_evaluator(tmp_path)
    other = ToyPoints(ToyDatasetConfig(name="toy_ring8", num_samples=4000, std=0.02, seed=2))
    results = evaluator(ReplayGenerator(other.points))
    # a 2-D Gaussian puts 1 - exp(-9/2) = 98.9% of its mass within 3 std
    assert results["modes"] == 8 and results["hq"] > 0.97 and results["kl"] < 0.01
    assert results["precision"] > 0.9 and results["recall"] > 0.9
    collapsed = evaluator(CollapsedGenerator())
    assert results["fid"] < 0.01 < 1.0 < collapsed["fid"]
    assert abs(results["kid"]) < collapsed["kid"] / 20


def test_a_collapsed_generator_is_caught(tmp_path):
    evaluator, _ = toy_evaluator(tmp_path)
    results = evaluator(CollapsedGenerator())
    assert results["modes"] <= 1 and results["kl"] > 1.5
    assert results["fid"] > 1.0 and results["recall"] < 0.2


def test_every_result_records_how_it_was_computed(tmp_path):
    evaluator, _ = toy_evaluator(tmp_path, psi=1.0)
    results = evaluator(CollapsedGenerator())
    assert results["features"] == "toy" and results["features_sha256"] == "none"
    assert results["num_fakes"] == 2000 and results["num_reals"] == 4000
    assert results["resize"] == "none" and results["psi"] == 1.0
    assert results["extraction"] == "reference"  # the toy extractor has no fast path
    assert "toy_ring8" in results["real_data"]
    key = json.loads(Path(results["real_stats"]).with_suffix(".json").read_text())
    assert key["count"] == 4000 and key["extractor"] == "toy"


def test_real_features_are_cached_and_recomputed_when_the_count_changes(tmp_path, monkeypatch):
    evaluator, _ = toy_evaluator(tmp_path)
    first = evaluator(CollapsedGenerator())["real_stats"]
    computed, extract = [], evaluate.extract

    def counting_extract(*args, **kwargs):
        computed.append(1)
        return extract(*args, **kwargs)

    monkeypatch.setattr(evaluate, "extract", counting_extract)
    again, _ = toy_evaluator(tmp_path)
    again._real_features(lambda n: None)
    assert computed == [] and again._real_paths["toy"] == first
    smaller, _ = toy_evaluator(tmp_path, num_reals=1000)
    smaller._real_features(lambda n: None)
    assert computed == [1] and smaller._real_paths["toy"] != first


def test_training_logs_eval_rows_with_every_metric_and_its_provenance(make_trainer, tmp_path):
    trainer = make_trainer([*TINY_TOY, "metrics=toy", "metrics.every_kimg=0.064",
                            "metrics.num_fakes=500", "metrics.num_reals=2000",
                            f"metrics.cache_dir={tmp_path / 'cache'}"])
    trainer.run()
    evals = [r for r in read_rows(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "eval"]
    assert [r["kimg"] for r in evals] == [0.064, 0.128]
    assert all({"modes", "hq", "kl", "fid", "features", "num_fakes"} <= set(r) for r in evals)


class ScriptedEvaluator:
    """Stands in for the evaluator with given KL values, so which evaluation is best is known."""

    def __init__(self, kl: list[float]) -> None:
        self.kl = iter(kl)

    def work(self, num_fakes: int | None = None) -> int:
        return 1

    def __call__(self, G, num_fakes=None, advance=lambda n: None) -> dict[str, float]:
        return {"kl": next(self.kl), "num_fakes": 500}


def test_the_best_checkpoint_survives_pruning_and_is_named_in_the_summary(make_trainer,
                                                                          tmp_path):
    trainer = make_trainer([*TINY_TOY, "trainer.kimg=0.192", "metrics=toy",
                            "metrics.every_kimg=0.064",
                            "trainer.checkpoints_keep=1", "metrics.best=kl"])
    trainer.evaluate.evaluator = ScriptedEvaluator([0.9, 0.5, 0.7])
    summary = trainer.run()
    assert summary["best"]["kl"]["value"] == 0.5 and summary["best"]["kl"]["kimg"] == 0.128
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "ckpt-000000128.pt", "ckpt-000000192.pt"]  # the best, and the newest
