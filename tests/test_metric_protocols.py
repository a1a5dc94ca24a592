"""Named protocols, ``metrics=auto``, reference statistics files and KID's provenance on small
sets: what a result row claims about how it was computed is what was done (issues 19, 20)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_evaluate import CollapsedGenerator

from gan_runner.config.compose import compose_config, validated
from gan_runner.core.errors import UserError
from gan_runner.data.toy import ToyDatasetConfig
from gan_runner.metrics.base import MetricsConfig
from gan_runner.metrics.evaluate import Evaluator
from gan_runner.metrics.features import build_extractor
from gan_runner.metrics.frechet import FeatureStats, frechet_distance

TOY = ToyDatasetConfig(name="toy_ring8", num_samples=600, std=0.02, seed=1)


def toy(tmp_path, **settings) -> Evaluator:
    cfg = MetricsConfig(cache_dir=str(tmp_path / "cache"), **settings)
    return Evaluator.for_dataset(cfg, TOY, torch.device("cpu"))


# ------------------------------------------------------------------ protocols
def test_a_protocol_sets_what_it_defines_and_is_named_in_the_row(tmp_path):
    cfg = MetricsConfig(protocol="fid50k_full")
    assert cfg.names == ["fid"] and cfg.num_fakes == 50_000 and cfg.num_reals is None
    assert cfg.features == "inception" and cfg.resize == "tf_bilinear"
    kid = MetricsConfig(protocol="kid50k_full")
    assert (kid.kid_subsets, kid.kid_subset_size) == (100, 1000)
    assert MetricsConfig(protocol="fid10k_test").real_split == "test"
    assert MetricsConfig(protocol="pr50k3_full").pr_features == "vgg16"
    ppl = MetricsConfig(protocol="ppl2_wend")
    assert ppl.names == ["ppl_wend"] and not ppl.ppl_crop and ppl.ppl_epsilon == 1e-4
    row = toy(tmp_path, names=["fid"], protocol="", num_fakes=100)(CollapsedGenerator())
    assert row["protocol"] is None


def test_protocols_combine_and_a_conflicting_setting_is_one_line():
    both = MetricsConfig(protocol="fid50k_full,kid50k_full")
    assert set(both.names) == {"fid", "kid"} and both.num_fakes == 50_000
    with pytest.raises(UserError, match=r"fixes metrics.num_fakes=50000"):
        MetricsConfig(protocol="fid50k_full", num_fakes=20_000)
    with pytest.raises(UserError, match=r"disagree on metrics.num_fakes"):
        MetricsConfig(protocol="fid50k_full,fid10k_test")
    with pytest.raises(UserError, match=r"unknown protocol 'fid50k'"):
        MetricsConfig(protocol="fid50k")


def test_the_protocol_of_the_training_config_is_applied():
    cfg = validated(compose_config(["metrics.protocol=fid10k_test"]))
    assert cfg.metrics.names == ["fid"] and cfg.metrics.real_split == "test"


# ------------------------------------------------------------------ metrics=auto
def test_auto_is_metrics_fid_on_images_exactly():
    """The default experiment evaluates as before: the same settings as metrics=fid."""
    assert validated(compose_config([])).metrics == validated(
        compose_config(["metrics=fid"])).metrics


def test_auto_is_metrics_toy_on_the_mixtures_and_keeps_settings_given_with_it():
    auto = validated(compose_config(["dataset=toy_ring8", "model=mlp"])).metrics
    assert auto == validated(compose_config(["dataset=toy_ring8", "model=mlp",
                                             "metrics=toy"])).metrics
    assert auto.names == ["toy", "fid", "kid"] and auto.num_fakes == 2500 and auto.best == "kl"
    given = validated(compose_config(["dataset=toy_ring8", "model=mlp",
                                      "metrics.num_fakes=400"])).metrics
    assert given.num_fakes == 400 and given.best == "kl"


# ------------------------------------------------------------------ KID on small sets
def test_kid_on_fewer_samples_than_the_subset_size_records_what_it_used(tmp_path):
    row = toy(tmp_path, names=["kid"], num_fakes=300, num_reals=200)(CollapsedGenerator())
    assert row["kid_subset_size"] == 200 and math.isnan(row["kid_std"])
    assert row["kid_subsets"] == 100  # the fakes still vary between subsets


# ------------------------------------------------------------------ reference statistics
def test_fid_against_a_pytorch_fid_statistics_file_equals_fid_against_the_features(tmp_path):
    evaluator = toy(tmp_path, names=["fid"], num_fakes=300)
    direct = evaluator(CollapsedGenerator())
    real = FeatureStats.from_features(evaluator._real_features(lambda n: None)["toy"]
                                      ["features"])
    np.savez(tmp_path / "ref.npz", mu=real.mu, sigma=real.sigma)  # pytorch-fid's format
    row = toy(tmp_path, names=["fid"], num_fakes=300,
              real_stats=str(tmp_path / "ref.npz"))(CollapsedGenerator())
    assert row["fid"] == pytest.approx(direct["fid"], rel=1e-12)
    assert row["real_stats"] == str(tmp_path / "ref.npz") and row["num_reals"] is None


def test_our_statistics_file_says_how_it_was_made_and_is_checked_on_use(tmp_path):
    evaluator = toy(tmp_path, names=["fid"], num_fakes=300)
    stats = evaluator.real_stats()
    stats.save(tmp_path / "ours.npz")
    loaded = FeatureStats.load(tmp_path / "ours.npz")
    assert loaded.meta["extractor"] == "toy" and loaded.count == 600
    assert "toy_ring8" in loaded.meta["dataset"]
    assert frechet_distance(loaded, stats) == pytest.approx(0.0, abs=1e-12)
    foreign = FeatureStats(loaded.mu, loaded.sigma, 600, {"extractor": "inception",
                                                         "extractor_sha256": "ab" * 32})
    foreign.save(tmp_path / "inception.npz")
    with pytest.raises(UserError, match=r"was made with inception"):
        toy(tmp_path, names=["fid"], real_stats=str(tmp_path / "inception.npz"))


def test_statistics_of_another_dimension_or_with_other_metrics_are_refused(tmp_path):
    np.savez(tmp_path / "2048.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    with pytest.raises(UserError, match=r"holds 2048-d statistics and metrics.features=toy"):
        toy(tmp_path, names=["fid"], real_stats=str(tmp_path / "2048.npz"))
    np.savez(tmp_path / "2.npz", mu=np.zeros(2), sigma=np.eye(2))
    with pytest.raises(UserError, match=r"kid need the real features"):
        toy(tmp_path, names=["fid", "kid"], real_stats=str(tmp_path / "2.npz"))


def test_the_toy_extractor_reports_its_dimension():
    assert build_extractor("toy").feature_dim == 2
