"""One registration makes a metric: the config accepts it, training logs it and keeps its best
checkpoint, ``gan-eval`` computes it and ``gan-report`` gives it columns, with no list to edit.

The metric registered here, ``mean_norm`` (the mean feature norm of the fakes, lower is
better), exists only while a test uses it, so the other tests see the built-in metrics alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_runner.cli.evaluate import evaluate
from gan_runner.core.errors import UserError
from gan_runner.data.toy import ToyDatasetConfig
from gan_runner.metrics.base import (
    METRICS,
    Compute,
    MetricContext,
    MetricsConfig,
    Need,
    Outputs,
    Result,
    register_metric,
)
from gan_runner.metrics.evaluate import Evaluator
from gan_runner.metrics.ranking import METRIC_KEYS, better
from gan_runner.presentation.report.make import make_report
from gan_runner.storage.runlog import read_rows

from conftest import TINY_TOY


def mean_norm(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    return {"mean_norm": float(np.linalg.norm(fake["features"], axis=1).mean())}


@contextmanager
def temporary_metric(name: str, compute: Compute, *declared: Result,
                     needs: tuple[Need, ...] = ("features",)) -> Iterator[None]:
    """The metric exists for the block only, however the block ends."""
    register_metric(name, *declared, needs=needs)(compute)
    try:
        yield
    finally:
        METRICS.unregister(name)


@pytest.fixture
def with_mean_norm() -> Iterator[None]:
    with temporary_metric("mean_norm", mean_norm,
                          Result("mean_norm", lower_is_better=True, label="mean norm")):
        yield


@pytest.fixture
def run_dir(with_mean_norm, make_trainer, tmp_path: Path) -> Path:
    """A tiny toy run evaluating mean_norm at 0.064 and 0.128 kimg, keeping its best."""
    make_trainer([*TINY_TOY, "metrics.names=[mean_norm]", "metrics.best=mean_norm",
                  "metrics.every_kimg=0.064", "metrics.num_fakes=200", "metrics.num_reals=500",
                  f"metrics.cache_dir={tmp_path / 'cache'}"]).run()
    return tmp_path / "run"


def evaluations(run: Path) -> list[dict]:
    return [row for row in read_rows(run / "metrics.jsonl") if row["kind"] == "eval"]


def test_the_config_takes_it_as_a_name_and_as_best_but_takes_no_spread(with_mean_norm):
    cfg = MetricsConfig(names=["mean_norm", "fid"], best="mean_norm")
    assert cfg.best == "mean_norm"
    with pytest.raises(UserError) as misspelt:
        MetricsConfig(names=["mean_nrom"])
    listed = str(misspelt.value).split("expected names from ")[1]
    assert listed.startswith("fid, ") and listed.endswith(", toy, ppl_wend, ppl_wfull, ppl_zend, "
                                                          "ppl_zfull, diversity, fd_dinov2, "
                                                          "kid_dinov2, pr_dinov2, mean_norm)")
    with pytest.raises(UserError) as spread:
        MetricsConfig(best="kid_std")
    assert str(spread.value).startswith("metrics.best='kid_std' is not valid")


def test_it_is_logged_and_ranked_after_the_built_in_metrics(with_mean_norm):
    keys = list(METRIC_KEYS)
    assert keys[-1] == "mean_norm" and keys.index("kl") < keys.index("mean_norm")
    assert better("mean_norm", 1.0, 2.0) and not better("mean_norm", 2.0, 1.0)


def test_training_logs_it_and_keeps_the_checkpoint_where_it_was_lowest(run_dir):
    values = [row["mean_norm"] for row in evaluations(run_dir)]
    assert len(values) == 2 and all(v > 0 for v in values)
    best = json.loads((run_dir / "summary.json").read_text())["best"]["mean_norm"]
    assert best["value"] == min(values)
    assert Path(best["path"]).exists()


def test_gan_eval_computes_it_for_a_checkpoint_as_training_did(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_RUNNER_CACHE", str(tmp_path / "eval-cache"))
    ckpt = sorted((run_dir / "checkpoints").glob("ckpt-*.pt"))[-1]
    results = evaluate([f"ckpt={ckpt}", "metrics=mean_norm", "num_fakes=200", "num_reals=500",
                        "device=cpu", f"out={tmp_path / 'eval.json'}"])
    # the same EMA generator and the same fixed latents as the run's last evaluation
    assert results["mean_norm"] == pytest.approx(evaluations(run_dir)[-1]["mean_norm"])
    assert json.loads((tmp_path / "eval.json").read_text())["mean_norm"] == results["mean_norm"]


def test_gan_report_gives_it_best_and_final_columns_under_its_label(run_dir):
    report = make_report(run_dir)
    row = dict(zip(report.table.columns, report.table.rows[0], strict=True))
    values = [r["mean_norm"] for r in evaluations(run_dir)]
    assert (row["mean norm best"], row["mean norm final"]) == (min(values), values[-1])
    assert "mean norm best" in (run_dir / "report" / "report.md").read_text()


def test_a_metric_that_reads_logits_is_refused_without_a_classifier(tmp_path):
    def needs_logits(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
        return {"top_class": float(fake["logits"].argmax(axis=1).mean())}

    with temporary_metric("top_class", needs_logits, Result("top_class", lower_is_better=False),
                          needs=("logits",)):
        cfg = MetricsConfig(names=["top_class"], cache_dir=str(tmp_path))
        with pytest.raises(UserError) as refused:
            Evaluator.for_dataset(cfg, ToyDatasetConfig(name="toy_ring8", num_samples=100),
                                  torch.device("cpu"))
    assert str(refused.value).startswith(
        "metrics.names has 'top_class' but metrics.features=toy has no classifier")


def test_a_metric_cannot_claim_a_result_key_another_one_produces():
    with pytest.raises(ValueError, match="already produced: fid"):
        register_metric("fid_again", Result("fid", lower_is_better=True))(mean_norm)
    assert "fid_again" not in METRICS
