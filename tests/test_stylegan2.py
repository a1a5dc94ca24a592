"""StyleGAN2: shapes at every resolution, equalized learning rate, weight demodulation, the
truncation trick, style mixing, minibatch standard deviation, and a few training steps."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from gan_runner.cli.train import validated
from gan_runner.config.store import register_configs
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS
from gan_runner.models.stylegan2 import (
    Generator,
    StyleGAN2Config,
    build_stylegan2,
    channel_widths,
    mix_styles,
)
from gan_runner.models.stylegan2.discriminator import MinibatchStd
from gan_runner.models.stylegan2.layers import (
    ConvClamp,
    EqualConv2d,
    EqualLinear,
    ModulatedConv2d,
    set_conv_clamp,
)
from gan_runner.models.stylegan2.mapping import W_AVG_BETA
from gan_runner.train.ema import update_ema

CONF = Path(__file__).resolve().parents[1] / "conf"


def tiny(**overrides) -> StyleGAN2Config:
    """Widths of at most 8 channels (4 at 256 px): shapes and wiring, not image quality."""
    options = {"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 1024,
               "channel_max": 8, **overrides}
    return StyleGAN2Config(**options)


def tiny_generator(resolution: int = 8, channels: int = 3, **overrides) -> Generator:
    return build_stylegan2(tiny(**overrides), DataSpec((channels, resolution, resolution))).G


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256])
def test_g_makes_data_shaped_images_and_d_one_logit_each(resolution, channels):
    pair = build_stylegan2(tiny(), DataSpec((channels, resolution, resolution)))
    with torch.no_grad():
        images = pair.G(torch.randn(2, pair.G.z_dim))
        logits = pair.D(images)
    assert images.shape == (2, channels, resolution, resolution)
    assert logits.shape == (2,)
    assert torch.isfinite(images).all() and torch.isfinite(logits).all()
    assert pair.G.num_ws == 2 * int(math.log2(resolution)) - 2  # 2 per octave, as the reference


@pytest.mark.parametrize("shape", [(3, 24, 24), (3, 4, 4), (1, 32, 16), (2,)])
def test_shapes_it_cannot_build_are_user_errors_with_a_hint(shape):
    with pytest.raises(UserError) as error:
        build_stylegan2(tiny(), DataSpec(shape))
    assert "stylegan2" in error.value.message
    assert ("power of two" in error.value.hint) or ("mlp" in error.value.hint)


def test_a_channel_base_too_small_for_the_resolution_is_a_user_error():
    with pytest.raises(UserError, match="channel_base"):
        build_stylegan2(tiny(channel_base=16), DataSpec((3, 32, 32)))


@pytest.mark.parametrize("key, value", [("mixing_prob", 1.5), ("mapping_lr_mult", 0.0),
                                        ("w_dim", 0), ("mbstd_group", 0)])
def test_out_of_range_options_are_user_errors(key, value):
    with pytest.raises(UserError, match=key):
        tiny(**{key: value})


def test_widths_follow_channel_base_over_side_capped_at_channel_max():
    assert channel_widths(256, 16384, 512) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256,
                                               128: 128, 256: 64}


# --- equalized learning rate --------------------------------------------------------------------


def test_linear_weights_are_stored_unit_normal_over_lr_mult_and_scaled_at_runtime():
    layer = EqualLinear(256, 128, lr_mult=0.01)
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.03)
    effective = (layer(torch.eye(256)) - layer(torch.zeros(1, 256))).T  # (out, in)
    assert effective.std().item() == pytest.approx(1 / math.sqrt(256), rel=0.03)


def test_lr_mult_scales_the_step_adam_takes_on_the_effective_weights():
    lr, fan_in = 1e-2, 64
    changes = {}
    for lr_mult in (1.0, 0.01):
        layer = EqualLinear(fan_in, 32, lr_mult=lr_mult)
        before = layer.weight.detach() * layer.weight_gain
        optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
        layer(torch.randn(16, fan_in)).square().sum().backward()
        optimizer.step()
        step = (layer.weight.detach() * layer.weight_gain - before).abs()
        changes[lr_mult] = step.median().item()
    # Adam's first step moves every stored weight by lr, whatever the gradient's scale
    assert changes[1.0] == pytest.approx(lr / math.sqrt(fan_in), rel=1e-3)
    assert changes[0.01] == pytest.approx(0.01 * lr / math.sqrt(fan_in), rel=1e-3)


def test_equalized_conv_keeps_unit_variance_for_unit_variance_input():
    conv = EqualConv2d(64, 64, 3, activate=False)
    out = conv(torch.randn(8, 64, 16, 16))[:, :, 1:-1, 1:-1]  # away from the zero padding
    assert out.std().item() == pytest.approx(1.0, rel=0.1)


# --- modulated convolution ----------------------------------------------------------------------


def test_demodulation_gives_unit_variance_whatever_the_style_scale():
    conv = ModulatedConv2d(64, 64, 3, w_dim=16)
    with torch.no_grad():
        conv.affine.bias.fill_(5.0)  # styles around 5: without demodulation, outputs ~5x larger
    x, w = torch.randn(8, 64, 16, 16), torch.randn(8, 16)
    out = conv(x, w)[:, :, 1:-1, 1:-1]
    assert out.std().item() == pytest.approx(1.0, rel=0.05)
    conv.demodulate = False
    assert conv(x, w)[:, :, 1:-1, 1:-1].std().item() > 3.0


def test_modulated_conv_equals_convolving_each_sample_with_its_demodulated_weight():
    conv = ModulatedConv2d(6, 5, 3, w_dim=4)
    x, w = torch.randn(3, 6, 7, 7), torch.randn(3, 4)
    styles = conv.affine(w)
    expected = []
    for sample, style in zip(x, styles, strict=True):
        weight = conv.weight * conv.weight_gain * style[None, :, None, None]
        weight = weight / weight.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        expected.append(F.conv2d(sample[None], weight, padding=1))
    torch.testing.assert_close(conv(x, w), torch.cat(expected), rtol=1e-4, atol=1e-5)


def test_upsampling_modulated_conv_doubles_the_side():
    conv = ModulatedConv2d(4, 6, 3, w_dim=4, up=True)
    assert conv(torch.randn(2, 4, 8, 8), torch.randn(2, 4)).shape == (2, 6, 16, 16)


# --- mapping: w_avg and truncation --------------------------------------------------------------


def test_training_mode_moves_w_avg_towards_the_batch_mean_and_eval_leaves_it():
    mapping = tiny_generator().mapping
    z = torch.randn(16, 8)
    w = mapping(z)[:, 0]
    torch.testing.assert_close(mapping.w_avg, (1 - W_AVG_BETA) * w.mean(dim=0))
    tracked = mapping.w_avg.clone()
    mapping.eval()(torch.randn(16, 8))
    torch.testing.assert_close(mapping.w_avg, tracked)


def test_psi_zero_gives_w_avg_on_every_layer_and_cutoff_only_on_the_first():
    G = tiny_generator(16).eval()
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(8))
    z = torch.randn(4, 8)
    free = G.styles(z)
    assert torch.equal(G.styles(z, psi=0.0), G.mapping.w_avg.expand_as(free))
    truncated = G.styles(z, psi=0.0, cutoff=2)
    assert torch.equal(truncated[:, :2], G.mapping.w_avg.expand(4, 2, 8))
    assert torch.equal(truncated[:, 2:], free[:, 2:])
    halfway = G.styles(z, psi=0.5)
    torch.testing.assert_close(halfway, (free + G.mapping.w_avg) / 2)
    images = G(z, psi=0.0, noise_mode="const")
    torch.testing.assert_close(images, images[:1].expand_as(images))


def test_the_ema_copy_truncates_towards_the_live_generators_w_avg():
    G = tiny_generator()
    G_ema = copy.deepcopy(G).eval()
    G(torch.randn(8, 8))  # training mode: w_avg moves
    update_ema(G_ema, G, beta=0.999)
    torch.testing.assert_close(G_ema.mapping.w_avg, G.mapping.w_avg)
    assert G.mapping.w_avg.abs().sum() > 0


# --- style mixing -------------------------------------------------------------------------------


def test_mix_styles_switches_each_sample_at_its_crossover_layer():
    ws, other = torch.zeros(3, 6, 2), torch.ones(3, 6, 2)
    mixed = mix_styles(ws, other, torch.tensor([1, 4, 6]))
    assert mixed[:, :, 0].tolist() == [[0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0] * 6]


def crossover_layers(ws: torch.Tensor, own: torch.Tensor) -> list[int]:
    """Where each sample's styles stop being its own w and become one other w."""
    layers = []
    for sample, w in zip(ws, own, strict=True):
        is_own = [torch.allclose(row, w) for row in sample]
        crossover = is_own.index(False) if False in is_own else len(is_own)
        assert all(is_own[:crossover]) and not any(is_own[crossover:])
        assert torch.equal(sample[crossover:], sample[crossover:][:1].expand_as(
            sample[crossover:]))
        layers.append(crossover)
    return layers


def test_training_mode_mixes_a_second_latent_from_a_random_layer_on():
    G = tiny_generator(32, mixing_prob=0.5)
    z = torch.randn(200, 8)
    own = G.mapping(z)[:, 0]
    torch.manual_seed(1)
    ws = G.styles(z)
    layers = crossover_layers(ws, own)
    mixed = [layer for layer in layers if layer < G.num_ws]
    assert 0.35 < len(mixed) / len(layers) < 0.65
    assert set(mixed) == set(range(1, G.num_ws))  # every crossover layer occurs, never 0
    torch.manual_seed(1)
    assert torch.equal(G.styles(z), ws)  # the seed fixes the crossovers


def test_eval_mode_and_mixing_prob_zero_never_mix():
    z = torch.randn(32, 8)
    for G in (tiny_generator(16, mixing_prob=1.0).eval(), tiny_generator(16, mixing_prob=0.0)):
        own = G.mapping(z)[:, 0]
        assert crossover_layers(G.styles(z), own) == [G.num_ws] * 32


# --- noise --------------------------------------------------------------------------------------


def test_noise_modes_random_const_and_none():
    G = tiny_generator(16).eval()
    for name, parameter in G.named_parameters():
        if name.endswith("noise.strength"):
            parameter.data.fill_(1.0)
    z = torch.randn(2, 8)
    assert not torch.equal(G(z), G(z))
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert not torch.allclose(G(z, noise_mode="const"), G(z, noise_mode="none"))
    with torch.no_grad():
        for name, parameter in G.named_parameters():
            if name.endswith("noise.strength"):
                parameter.zero_()
    torch.testing.assert_close(G(z, noise_mode="const"), G(z, noise_mode="none"))


# --- discriminator ------------------------------------------------------------------------------


def test_minibatch_std_appends_the_mean_std_over_each_group():
    x = torch.randn(8, 3, 4, 4)
    out = MinibatchStd(group_size=4)(x)
    assert out.shape == (8, 4, 4, 4)
    assert torch.equal(out[:, :3], x)
    for i in range(8):
        group = x[i % 2::2]  # 8 samples in groups of 4: sample i is in group i mod 2
        expected = group.std(dim=0, unbiased=False).mean()
        torch.testing.assert_close(out[i, 3], expected.expand(4, 4), rtol=1e-4, atol=1e-6)


def test_minibatch_std_uses_the_largest_group_that_divides_the_batch():
    x = torch.randn(6, 2, 4, 4)
    out = MinibatchStd(group_size=4)(x)  # groups of 3: samples {0, 2, 4} and {1, 3, 5}
    torch.testing.assert_close(out[0, 2, 0, 0], x[0::2].std(dim=0, unbiased=False).mean(),
                               rtol=1e-4, atol=1e-6)


def test_d_sees_batch_variety_through_minibatch_std():
    D = build_stylegan2(tiny(), DataSpec((3, 16, 16))).D
    image = torch.randn(1, 3, 16, 16)
    same = D(image.expand(4, -1, -1, -1))
    varied = D(torch.cat([image, torch.randn(3, 3, 16, 16)]))
    assert not torch.allclose(same[0], varied[0])


# --- training -----------------------------------------------------------------------------------


def test_a_few_adversarial_steps_give_finite_losses_and_change_both_networks():
    pair = build_stylegan2(tiny(), DataSpec((1, 16, 16)))
    G, D = pair.G, pair.D
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    before = {name: p.detach().clone() for name, p in [*G.named_parameters(),
                                                         *D.named_parameters()]}
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    for _ in range(3):
        d_loss = F.softplus(D(G(torch.randn(4, 8)).detach())).mean() + F.softplus(-D(real)).mean()
        opt_D.zero_grad()
        d_loss.backward()
        opt_D.step()
        g_loss = F.softplus(-D(G(torch.randn(4, 8)))).mean()
        opt_G.zero_grad()
        g_loss.backward()
        opt_G.step()
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    after = dict([*G.named_parameters(), *D.named_parameters()])
    unchanged = [name for name, value in before.items() if torch.equal(value, after[name])]
    assert unchanged == []


# --- registration and config files --------------------------------------------------------------


def test_stylegan_is_a_second_registry_entry_for_the_same_factory():
    assert MODELS.get("stylegan") is MODELS.get("stylegan2") is build_stylegan2
    assert MODELS.entry("stylegan").schema is MODELS.entry("stylegan2").schema is StyleGAN2Config


@pytest.fixture(scope="module")
def composed():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda *overrides: validated(compose("train", list(overrides))).model


@pytest.mark.parametrize("option, name, z_dim", [("stylegan2", "stylegan2", 512),
                                                 ("stylegan", "stylegan", 512),
                                                 ("stylegan2_tiny", "stylegan2", 128)])
def test_model_options_compose_onto_the_schema(composed, option, name, z_dim):
    cfg = composed(f"model={option}")
    assert type(cfg) is StyleGAN2Config
    assert (cfg.name, cfg.z_dim) == (name, z_dim)


def test_the_tiny_preset_builds_narrow_networks_at_32_px(composed):
    cfg = composed("model=stylegan2_tiny", "model.mixing_prob=0.5")
    assert cfg.mixing_prob == 0.5
    pair = MODELS.get(cfg.name)(cfg, DataSpec((1, 32, 32)))
    assert sum(p.numel() for p in pair.G.parameters()) < 1_000_000
    with torch.no_grad():
        assert pair.D(pair.G(torch.randn(2, cfg.z_dim))).shape == (2,)


def test_an_invalid_model_override_is_a_user_error(composed):
    with pytest.raises(UserError, match="mixing_prob"):
        composed("model=stylegan2", "model.mixing_prob=2")


# --- conv_clamp: StyleGAN2-ADA's activation bound in float16 ------------------------------------


def loud_pair(**overrides):
    """A tiny G and D whose activations reach thousands (a scaled-up constant and RGB biases),
    and a hook that records the largest activation each clamped layer hands on."""
    pair = build_stylegan2(tiny(**overrides), DataSpec((3, 16, 16)))
    with torch.no_grad():
        pair.G.synthesis.const.mul_(1000)
        for block in pair.G.synthesis.blocks:
            block.to_rgb.bias.fill_(500.0)
    largest: dict[str, float] = {}
    for net in ("G", "D"):
        for name, module in getattr(pair, net).named_modules():
            if isinstance(module, ConvClamp):
                module.register_forward_hook(
                    lambda m, i, out, key=f"{net}.{name}": largest.__setitem__(
                        key, float(out.detach().abs().max())))
    return pair.G.eval(), pair.D, largest


def test_under_fp16_autocast_every_convolution_layer_is_clamped_at_256():
    G, D, largest = loud_pair()
    z = torch.randn(4, G.z_dim)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        logits = D(G(z))
    layers = {key.split(".", 1)[0] for key in largest}
    assert layers == {"G", "D"} and max(largest.values()) == 256.0
    assert torch.isfinite(logits).all()
    with torch.no_grad():
        D(G(z))
    assert max(largest.values()) > 1000  # the same network in fp32 goes well past the bound


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_clamp_leaves_fp32_and_bf16_numbers_exactly_as_without_it(dtype):
    G, D, _ = loud_pair()
    G_off, D_off = copy.deepcopy(G), copy.deepcopy(D)
    for net in (G_off, D_off):
        set_conv_clamp(net, None)
    z = torch.randn(4, G.z_dim)
    context = torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32)
    with torch.no_grad(), context:
        torch.manual_seed(1)
        images, logits = G(z), D(G(z))
        torch.manual_seed(1)
        images_off, logits_off = G_off(z), D_off(G_off(z))
    assert images.abs().max() > 256 and torch.equal(images, images_off)
    assert torch.equal(logits, logits_off)


def test_model_conv_clamp_sets_the_bound_and_null_turns_it_off():
    for value in (100.0, None):
        pair = build_stylegan2(tiny(conv_clamp=value), DataSpec((3, 16, 16)))
        limits = {m.limit for net in (pair.G, pair.D) for m in net.modules()
                  if isinstance(m, ConvClamp)}
        assert limits == {value}
    assert tiny().conv_clamp == 256.0
    with pytest.raises(UserError, match=r"model\.conv_clamp"):
        tiny(conv_clamp=0.0)


def test_conv_clamp_composes_from_the_command_line(composed):
    assert composed("model=stylegan2").conv_clamp == 256.0
    assert composed("model=stylegan2", "model.conv_clamp=null").conv_clamp is None
    with pytest.raises(UserError, match="conv_clamp"):
        composed("model=stylegan2", "model.conv_clamp=-1")
