"""Path-length regularization: the penalty is (||J_w^T y|| - a)^2 with ``a`` a running mean of
path lengths, computed on the live generator's mapping and synthesis networks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.func import jacfwd

from gan_runner.config.store import register_configs
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.dcgan import DCGANConfig, build_dcgan
from gan_runner.models.stylegan2 import Generator, StyleGAN2Config, build_stylegan2
from gan_runner.objectives.base import REGULARIZERS, GBatch
from gan_runner.objectives.path_length import PathLengthConfig, PathLengthPenalty

CONF = Path(__file__).resolve().parents[1] / "conf"
# torch.func's first use touches the deprecated torch.jit.script inside torch itself
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


def tiny_generator(channels: int = 1) -> Generator:
    cfg = StyleGAN2Config(z_dim=4, w_dim=4, mapping_layers=1, channel_base=32, channel_max=4)
    return build_stylegan2(cfg, DataSpec((channels, 8, 8))).G


def penalty_term(**options) -> PathLengthPenalty:
    return REGULARIZERS.get("path_length")("path_length", PathLengthConfig(**options))


def explicit_lengths(G: Generator, n: int, seed: int) -> torch.Tensor:
    """Path lengths from the full Jacobian of the images w.r.t. ws, drawing z, the synthesis
    noise and y from ``seed`` in the order the penalty draws them."""
    torch.manual_seed(seed)
    ws = G.mapping(torch.randn(n, G.z_dim)).detach()
    images = G.synthesis(ws)
    y = torch.randn_like(images) / math.sqrt(images.shape[-2] * images.shape[-1])
    # the noise strengths start at 0, so the noise-free synthesis has the same Jacobian; samples
    # are independent, so each image depends only on its own ws
    def synthesize_one(w: torch.Tensor) -> torch.Tensor:
        return G.synthesis(w[None], noise_mode="none")[0]

    lengths = []
    for w, y_n in zip(ws, y, strict=True):
        J = jacfwd(synthesize_one)(w)  # (C, H, W, num_ws, w_dim)
        jt_y = torch.einsum("chw,chwlk->lk", y_n, J)
        lengths.append(jt_y.square().sum(dim=1).mean().sqrt())
    return torch.stack(lengths)


def test_the_penalty_equals_a_direct_jacobian_computation():
    G = tiny_generator(channels=3)
    reg = penalty_term(batch_shrink=2, decay=0.01)
    torch.manual_seed(7)
    penalty = reg.penalty(GBatch(G, batch_size=6))
    lengths = explicit_lengths(G, 3, seed=7)
    a = 0.01 * lengths.mean()
    torch.testing.assert_close(penalty, (lengths - a).square().mean(), rtol=1e-4, atol=1e-7)
    assert lengths.std() > 0  # samples differ, so the check covers per-sample lengths


def test_the_running_mean_moves_by_decay_towards_each_batch_mean():
    G = tiny_generator()
    reg = penalty_term(decay=0.25)
    first, second = (explicit_lengths(G, 2, seed).mean() for seed in (1, 2))
    torch.manual_seed(1)
    reg.penalty(GBatch(G, batch_size=4))
    torch.testing.assert_close(reg.mean, 0.25 * first, rtol=1e-4, atol=1e-7)
    torch.manual_seed(2)
    reg.penalty(GBatch(G, batch_size=4))
    expected = 0.25 * first + 0.25 * (second - 0.25 * first)
    torch.testing.assert_close(reg.mean, expected, rtol=1e-4, atol=1e-7)


def test_the_running_mean_is_saved_and_restored_with_the_state_dict():
    G = tiny_generator()
    reg = penalty_term()
    reg.penalty(GBatch(G, batch_size=4))
    restored = penalty_term()
    restored.load_state_dict(reg.state_dict())
    assert restored.mean.item() == reg.mean.item() != 0.0


@pytest.mark.parametrize("batch_size, shrink, samples", [(8, 2, 4), (8, 1, 8), (1, 2, 1)])
def test_it_samples_batch_size_over_batch_shrink_images(batch_size, shrink, samples):
    G = tiny_generator()
    seen = []
    G.synthesis.register_forward_hook(lambda module, args, out: seen.append(len(out)))
    penalty_term(batch_shrink=shrink).penalty(GBatch(G, batch_size))
    assert seen == [samples]


def test_the_penalty_trains_both_mapping_and_synthesis():
    G = tiny_generator()
    penalty_term().penalty(GBatch(G, batch_size=4)).backward()
    for part in (G.mapping, G.synthesis):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0


def test_generators_without_a_mapping_network_are_a_user_error():
    G = build_dcgan(DCGANConfig(channels=4, max_channels=8), DataSpec((1, 8, 8))).G
    with pytest.raises(UserError, match="mapping network") as error:
        penalty_term().penalty(GBatch(G, batch_size=4))
    assert "stylegan2" in error.value.hint


def test_it_is_a_g_side_module_with_the_paper_defaults():
    reg = penalty_term()
    assert isinstance(reg, torch.nn.Module)
    assert (reg.name, reg.side, reg.weight, reg.every) == ("path_length", "G", 2.0, 4)
    assert (reg.cfg.decay, reg.cfg.batch_shrink) == (0.01, 2)


@pytest.mark.parametrize("key, value", [("decay", 0.0), ("decay", 1.5), ("batch_shrink", 0),
                                        ("weight", -1.0)])
def test_out_of_range_options_are_user_errors(key, value):
    with pytest.raises(UserError, match=key):
        PathLengthConfig(**{key: value})


def test_the_option_file_composes_with_other_regularizers():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["model=stylegan2_tiny", "regularizer=[r1,path_length]",
                                "regularizer.path_length.decay=0.02"])
    regs = OmegaConf.to_object(cfg.regularizer)
    assert sorted(regs) == ["path_length", "r1"]
    reg_cfg = regs["path_length"]
    assert type(reg_cfg) is PathLengthConfig
    assert (reg_cfg.weight, reg_cfg.every, reg_cfg.decay, reg_cfg.batch_shrink) == (2.0, 4,
                                                                                   0.02, 2)
