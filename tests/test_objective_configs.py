"""The loss and regularizer options compose through Hydra and build what their files promise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gan_runner.config.store import register_configs
from gan_runner.core.errors import UserError
from gan_runner.objectives import losses, regularizers  # noqa: F401  (they register themselves)
from gan_runner.objectives.base import LOSSES, REGULARIZERS, LossConfig

CONF = Path(__file__).resolve().parents[1] / "conf"
LOSS_OPTIONS = sorted(path.stem for path in (CONF / "loss").glob("*.yaml"))
# option -> (weight, every) its file sets: the papers' defaults, lazy R1 as in StyleGAN2
REGULARIZER_DEFAULTS = {
    "gp": (10.0, 1), "dragan": (10.0, 1), "r1": (10.0, 16), "r2": (10.0, 1), "bcr": (1.0, 1),
}


@pytest.fixture(scope="module")
def composed():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda *overrides: compose("train", overrides=list(overrides))


def regularizers_of(cfg) -> dict:
    return OmegaConf.to_object(cfg.regularizer)


def test_there_is_a_loss_file_per_registered_loss():
    assert LOSSES.names() == LOSS_OPTIONS


@pytest.mark.parametrize("name", LOSS_OPTIONS)
def test_each_loss_option_selects_its_loss(composed, name):
    loss_cfg = OmegaConf.to_object(composed(f"loss={name}").loss)
    assert isinstance(loss_cfg, LossConfig)
    assert loss_cfg.name == name
    LOSSES.get(name)(loss_cfg)


def test_wgan_gp_brings_its_gradient_penalty_and_two_critic_steps(composed):
    cfg = composed("loss=wgan_gp")
    assert {k: (v.weight, v.every) for k, v in regularizers_of(cfg).items()} == {"gp": (10.0, 1)}
    assert cfg.trainer.d_steps == 2
    assert composed("loss=wgan_gp", "trainer.d_steps=5").trainer.d_steps == 5
    assert composed("loss=wgan_gp", "experiment=toy_grid25").trainer.d_steps == 2
    assert composed("loss=ns").trainer.d_steps == 1
    tuned = regularizers_of(composed("loss=wgan_gp", "regularizer.gp.weight=5"))
    assert tuned["gp"].weight == 5.0
    combined = regularizers_of(composed("loss=wgan_gp", "regularizer=[gp,r1]"))
    assert sorted(combined) == ["gp", "r1"]


@pytest.mark.parametrize("name", sorted(REGULARIZER_DEFAULTS))
def test_each_regularizer_option_composes_onto_its_schema(composed, name):
    reg_cfg = regularizers_of(composed(f"regularizer=[{name}]"))[name]
    assert type(reg_cfg) is REGULARIZERS.entry(name).schema
    assert (reg_cfg.weight, reg_cfg.every) == REGULARIZER_DEFAULTS[name]
    assert REGULARIZERS.get(name)(name, reg_cfg).side == "D"


# option -> its weight on images, on the toy grid (points 2 apart, std 0.05)
SCALE_DEPENDENT_WEIGHTS = {"r1": (10.0, 0.1), "r2": (10.0, 0.1), "gp": (10.0, 1.0)}


@pytest.mark.parametrize("name", sorted(SCALE_DEPENDENT_WEIGHTS))
def test_penalty_weights_start_from_the_value_that_suits_the_datasets_scale(composed, name):
    on_images, on_toy = SCALE_DEPENDENT_WEIGHTS[name]
    assert regularizers_of(composed(f"regularizer=[{name}]"))[name].weight == on_images
    toy = composed(f"regularizer=[{name}]", "experiment=toy_grid25")
    assert regularizers_of(toy)[name].weight == on_toy
    assert OmegaConf.to_container(toy, resolve=True)["regularizer"][name]["weight"] == on_toy
    chosen = composed(f"regularizer=[{name}]", "experiment=toy_grid25",
                      f"regularizer.{name}.weight=3")
    assert regularizers_of(chosen)[name].weight == 3.0


def test_regularizers_are_multi_select_and_bcr_keeps_its_own_fields(composed):
    regs = regularizers_of(composed("regularizer=[r1,bcr]", "regularizer.bcr.lambda_fake=5"))
    assert sorted(regs) == ["bcr", "r1"]
    assert (regs["bcr"].lambda_real, regs["bcr"].lambda_fake) == (10.0, 5.0)


def test_an_invalid_regularizer_value_is_a_user_error(composed):
    with pytest.raises(UserError, match="weight"):
        regularizers_of(composed("regularizer=[r1]", "regularizer.r1.weight=-1"))


def test_wgan_brings_rmsprop_as_in_the_paper_unless_the_user_picks_an_optimizer(composed):
    assert composed("loss=wgan").optimizer.name == "rmsprop"
    assert composed("loss=wgan").optimizer.d_lr == pytest.approx(5e-5)
    assert composed("loss=wgan", "optimizer=adam").optimizer.name == "adam"
    assert composed("loss=wgan_gp").optimizer.name == "adam"
