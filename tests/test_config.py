"""Every config option composes onto its schema, and bad values are refused before training."""

from __future__ import annotations

from importlib.resources import files

import pytest

from gan_runner.cli.train import GROUPS
from gan_runner.config.compose import compose_config, validated
from gan_runner.config.schema import TrainConfig
from gan_runner.core.errors import UserError
from gan_runner.core.registry import Registry

CONF = files("gan_runner.conf")


def options(group: str) -> list[str]:
    return sorted(p.name[:-5] for p in CONF.joinpath(group).iterdir() if p.name.endswith(".yaml"))


def test_default_config_is_the_fashion_mnist_dcgan_run():
    cfg = validated(compose_config())
    assert isinstance(cfg, TrainConfig)
    assert (cfg.dataset.name, cfg.model.name, cfg.loss.name) == ("fashion_mnist", "dcgan", "ns")
    assert cfg.regularizer == {} and cfg.augment.name == "none"


# options that only make sense with another group's option
COMPANIONS = {"toy_ring8": ["model=mlp"], "toy_grid25": ["model=mlp"]}


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_validates(group, option):
    cfg = validated(compose_config([f"{group}={option}", *COMPANIONS.get(option, [])]))
    registries = Registry.config_groups()
    if group in registries and group not in ("regularizer", "logger"):  # lists: name -> options
        assert getattr(cfg, group).name in registries[group]  # a name its registry knows


def test_regularizers_combine_as_a_list():
    cfg = validated(compose_config(["regularizer=[r1,bcr]"]))
    assert set(cfg.regularizer) == {"r1", "bcr"}


def test_names_the_docs_rely_on_exist():
    cfg = validated(compose_config())
    for dotted in ("trainer.kimg", "trainer.batch_size", "trainer.seed", "trainer.device",
                   "trainer.resume", "trainer.d_steps", "dataset.root", "dataset.resolution",
                   "dataset.max_images", "metrics.every_kimg", "metrics.features"):
        section, key = dotted.split(".")
        assert hasattr(getattr(cfg, section), key), dotted


@pytest.mark.parametrize("override,fragment", [
    ("trainer.batch_size=0", "trainer.batch_size=0 is not valid"),
    ("trainer.kimg=-1", "trainer.kimg=-1.0 is not valid"),
    ("optimizer.g_lr=0", "optimizer.g_lr=0.0 is not valid"),
    ("trainer.device=tpu", "trainer.device='tpu' is not valid"),
    ("dataset.fit=squash", "dataset.fit='squash' is not valid"),
    ("optimizer.d_betas=[0.5,1.5]", "optimizer.d_betas=[0.5, 1.5] is not valid"),
])
def test_out_of_range_values_are_user_errors(override, fragment):
    with pytest.raises(UserError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        validated(compose_config([override]))


def test_debug_fast_shortens_any_experiment_to_seconds_without_evaluation():
    for base in ([], ["experiment=toy_grid25"], ["experiment=stylegan2"]):
        cfg = validated(compose_config([*base, "debug=fast"]))
        assert (cfg.trainer.kimg, cfg.trainer.batch_size, cfg.metrics.names) == (0.064, 16, [])
        assert not cfg.trainer.progress
    assert validated(compose_config(["debug=fast", "trainer.kimg=1"])).trainer.kimg == 1
