"""Metrics of class-conditional generators: intra-FID, class accuracy, and fakes drawn with
labels in the real data's proportions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from gan_runner.core.errors import UserError
from gan_runner.data.toy import ToyDatasetConfig
from gan_runner.metrics.base import METRICS, MetricContext, MetricsConfig
from gan_runner.metrics.evaluate import Evaluator
from gan_runner.metrics.frechet import FeatureStats, frechet_distance

from conftest import TINY_FMNIST, needs_fmnist

RING = ToyDatasetConfig(name="toy_ring8", num_samples=4000)


def context() -> MetricContext:
    return MetricContext(MetricsConfig(), data=None)  # type: ignore[arg-type]


def compute(name, real, fake, ctx=None):
    ctx = ctx or context()
    return METRICS.get(name).compute(real, fake, ctx), ctx


def test_intra_fid_is_the_mean_of_each_classes_fid_and_records_them():
    rng = np.random.default_rng(0)
    real_labels, fake_labels = np.repeat([0, 1, 2], 200), np.repeat([0, 1, 2], 150)
    real_f = rng.normal(size=(600, 4)) + real_labels[:, None]
    fake_f = rng.normal(size=(450, 4)) + 1.5 * fake_labels[:, None]
    values, ctx = compute("intra_fid", {"features": real_f, "labels": real_labels},
                          {"features": fake_f, "labels": fake_labels})
    expected = [frechet_distance(FeatureStats.from_features(real_f[real_labels == k]),
                                 FeatureStats.from_features(fake_f[fake_labels == k]))
                for k in range(3)]
    assert values["intra_fid"] == pytest.approx(np.mean(expected), rel=1e-12)
    assert ctx.notes["fid_per_class"] == [round(v, 4) for v in expected]
    assert ctx.notes["fakes_per_class"] == [150, 150, 150]


def test_intra_fid_sees_what_fid_misses_a_generator_that_swaps_its_classes():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 500)
    real = rng.normal(size=(1000, 3)) + 4 * labels[:, None]
    # the right images under the wrong labels
    swapped = rng.normal(size=(1000, 3)) + 4 * (1 - labels)[:, None]
    fid, _ = compute("fid", {"features": real}, {"features": swapped})
    intra, _ = compute("intra_fid", {"features": real, "labels": labels},
                       {"features": swapped, "labels": labels})
    assert fid["fid"] < 0.1 < 10 < intra["intra_fid"]


def test_class_accuracy_is_the_share_of_fakes_classified_as_their_label():
    logits = np.eye(4)[[0, 1, 2, 3, 0, 0]]
    values, ctx = compute("class_accuracy",
                          {"logits": np.eye(4)[[0, 1]], "labels": np.array([0, 0])},
                          {"logits": logits, "labels": np.array([0, 1, 2, 0, 0, 3])})
    assert values["class_accuracy"] == pytest.approx(4 / 6)
    assert ctx.notes["classifier_real_accuracy"] == 0.5
    assert ctx.notes["accuracy_per_class"] == [0.6667, 1.0, 1.0, 0.0]


def test_a_class_no_fake_was_drawn_for_has_no_accuracy_rather_than_zero():
    _, ctx = compute("class_accuracy", {"logits": np.eye(3)[[0]]},
                     {"logits": np.eye(3)[[0, 2]], "labels": np.array([0, 2])})
    assert ctx.notes["accuracy_per_class"] == [1.0, None, 1.0]


def test_a_class_without_samples_is_one_line():
    with pytest.raises(UserError, match="class 1 has 3 real and 0 fake samples"):
        compute("intra_fid", {"features": np.zeros((6, 2)), "labels": np.array([0, 0, 0, 1, 1, 1])},
                {"features": np.zeros((3, 2)), "labels": np.array([0, 0, 0])})


class RingG(nn.Module):
    """A conditional G for the ring: each class's fakes at that mode's centre."""

    z_dim, num_classes = 2, 8

    def __init__(self, centres: Tensor) -> None:
        super().__init__()
        self.centres = centres
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return self.centres[c] + 0.05 * z + self.dummy


def ring_evaluator(tmp_path, names) -> Evaluator:
    cfg = MetricsConfig(names=names, num_fakes=4000, batch_size=500, cache_dir=str(tmp_path))
    return Evaluator.for_dataset(cfg, RING, torch.device("cpu"))


def test_fakes_are_drawn_with_labels_in_the_real_proportions(tmp_path):
    evaluator = ring_evaluator(tmp_path, ["intra_fid"])
    G = RingG(evaluator.real.centers)
    result = evaluator(G)
    real_counts = np.bincount(evaluator.real.labels.numpy(), minlength=8) / len(evaluator.real)
    fake_counts = np.array(result["fakes_per_class"]) / 4000
    assert np.abs(fake_counts - real_counts).max() < 0.02
    # each class's fakes sit on their own mode: a small intra-FID
    assert result["intra_fid"] < 0.05


def test_label_metrics_refuse_an_unconditional_generator_in_one_line(tmp_path):
    evaluator = ring_evaluator(tmp_path, ["intra_fid"])
    G = nn.Sequential(nn.Linear(2, 2))
    G.z_dim = 2
    with pytest.raises(UserError, match="this generator is not class-conditional"):
        evaluator(G)


@needs_fmnist
def test_a_conditional_run_reports_intra_fid_class_accuracy_and_each_classes_fid(
        make_trainer, tmp_path):
    from gan_runner.presentation.report.make import make_report

    trainer = make_trainer([*TINY_FMNIST, "conditioning=projection",
                            "metrics.names=[fid,intra_fid,class_accuracy]",
                            "metrics.num_fakes=500", "metrics.num_reals=1000",
                            f"metrics.cache_dir={tmp_path / 'cache'}"], tmp_path / "runs" / "a")
    trainer.run()
    rows = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").open()]
    final = [r for r in rows if r["kind"] == "eval"][-1]
    assert len(final["fid_per_class"]) == 10 and sum(final["fakes_per_class"]) == 500
    assert final["intra_fid"] == pytest.approx(np.mean(final["fid_per_class"]), abs=1e-3)
    assert 0 <= final["class_accuracy"] <= 1
    report = make_report(tmp_path / "runs")
    text = (tmp_path / "runs" / "report" / "report.md").read_text()
    assert "intra-FID best" in text and "class accuracy best" in text
    assert "# Per-class FID (last evaluation)" in text and "class 9" in text
    assert "# Per-class accuracy of the fakes (last evaluation)" in text
    page = (tmp_path / "runs" / "report" / "report.html").read_text()
    assert "Per-class FID" in page and "Per-class accuracy of the fakes" in page
    assert len(final["accuracy_per_class"]) == 10
    assert report.runs
