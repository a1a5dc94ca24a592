"""Conditional models: every model takes the class the ways it promises (G: concat, cbn, the
mapping network; D: concat, projection, an acgan head), InfoGAN's codes and Q head, one latent
sampler for all, and one line for each conditioning a model or the data cannot have."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, sample_classes, sample_latents
from gan_runner.models.conditioning import ConditioningConfig, LatentCodes
from gan_runner.models.dcgan import DCGANConfig
from gan_runner.models.mlp import MLPConfig
from gan_runner.models.stylegan2 import StyleGAN2Config
from gan_runner.models.stylegan2.mapping import W_AVG_BETA
from gan_runner.storage.run_checkpoint import build_networks

K = 5
IMAGES = DataSpec((1, 16, 16), K)
POINTS = DataSpec((2,), K)
SMALL = {"dcgan": (DCGANConfig(channels=4, z_dim=8), IMAGES),
         "mlp": (MLPConfig(z_dim=4, hidden=16, layers=2), POINTS),
         "stylegan2": (StyleGAN2Config(z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                                       channel_max=8), IMAGES)}
COMBOS = [("dcgan", "concat", "concat"), ("dcgan", "cbn", "projection"),
          ("dcgan", "cbn", "acgan"), ("dcgan", "concat", "projection"),
          ("mlp", "concat", "concat"), ("mlp", "auto", "projection"), ("mlp", "auto", "acgan"),
          ("stylegan2", "auto", "projection"), ("stylegan2", "concat", "acgan")]
HEADS = {"concat": set(), "projection": set(), "acgan": {"class_logits"}}


def build(model: str, g: str = "auto", d: str = "none", spec: DataSpec | None = None,
          **options):
    cfg, default_spec = SMALL[model]
    conditioning = ConditioningConfig(name="test", g=g, d=d, **options)
    torch.manual_seed(0)
    return MODELS.get(cfg.name)(cfg, spec or default_spec, conditioning)


def batch(pair, n: int = 6):
    z = sample_latents(pair.G, n, torch.Generator().manual_seed(1))
    c = torch.arange(n) % K
    return z, c


@pytest.mark.parametrize("model, g, d", COMBOS)
def test_a_conditional_pair_takes_classes_and_its_heads_share_the_logits(model, g, d):
    pair = build(model, g, d)
    z, c = batch(pair)
    pair.G.eval()
    x = pair.G(z, c)
    assert x.shape == (6, *SMALL[model][1].shape)
    logits, heads = pair.D.heads(x, c)
    assert logits.shape == (6,) and set(heads) == HEADS[d]
    assert torch.equal(pair.D(x, c), logits)
    if d == "acgan":
        assert heads["class_logits"].shape == (6, K)
    assert pair.G.num_classes == pair.D.num_classes == K


@pytest.mark.parametrize("model, g, d", COMBOS)
def test_the_class_changes_what_g_draws(model, g, d):
    pair = build(model, g, d)
    pair.G.eval()
    z = sample_latents(pair.G, 1, torch.Generator().manual_seed(2)).repeat(K, 1)
    images = pair.G(z, torch.arange(K))
    assert not torch.allclose(images[0], images[1])


@pytest.mark.parametrize("model, g, d", [c for c in COMBOS if c[2] != "acgan"])
def test_a_d_told_the_class_judges_the_same_sample_differently_per_class(model, g, d):
    pair = build(model, g, d)
    x = torch.randn(1, *SMALL[model][1].shape).repeat(K, 1, *[1] * (len(SMALL[model][1].shape)
                                                                  - 1))
    if d == "projection":  # a fresh embedding is small: make it matter
        with torch.no_grad():
            for name, p in pair.D.named_parameters():
                if "projection" in name or "cmap" in name:
                    p.normal_()
    logits = pair.D(x, torch.arange(K))
    assert logits.unique().numel() == K


@pytest.mark.parametrize("model, g, d", COMBOS)
def test_a_conditional_d_has_an_input_gradient_for_r1_and_gp(model, g, d):
    pair = build(model, g, d)
    z, c = batch(pair)
    x = pair.G(z, c).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(pair.D(x, c).sum(), x, create_graph=True)
    assert grad.shape == x.shape and grad.abs().sum() > 0
    grad.square().sum().backward()  # the penalty's own backward reaches D's weights


def test_cbn_has_a_gain_and_a_bias_per_class_in_every_g_norm_layer():
    pair = build("dcgan", "cbn", "projection")
    norms = [m for m in pair.G.modules() if type(m).__name__ == "ConditionalBatchNorm2d"]
    assert len(norms) == 2  # 16 px: the 4x4 and 8x8 layers
    assert all(n.gain.weight.shape[0] == K and not n.norm.affine for n in norms)


def test_concat_takes_a_learned_embedding_when_given_its_size():
    pair = build("dcgan", "concat", "concat", embed_dim=3)
    assert pair.G.net[0].in_channels == 8 + 3 and pair.D.net[0].in_channels == 1 + 3


def test_spectral_norm_covers_the_projection_embedding():
    cfg = DCGANConfig(channels=4, z_dim=8, spectral_norm=True)
    pair = MODELS.get("dcgan")(cfg, IMAGES, ConditioningConfig(name="p", d="projection"))
    assert hasattr(pair.D.aux.projection, "parametrizations")


def test_networks_without_their_labels_say_so():
    pair = build("dcgan", "cbn", "projection")
    z, c = batch(pair)
    with pytest.raises(ValueError, match="class-conditional"):
        pair.G(z)
    with pytest.raises(ValueError, match="class-conditional"):
        pair.D(pair.G(z, c))
    unconditional = MODELS.get("dcgan")(*SMALL["dcgan"])
    with pytest.raises(ValueError, match="not class-conditional"):
        unconditional.G(z, c)
    acgan = build("dcgan", "cbn", "acgan")
    assert acgan.D(acgan.G(z, c)).shape == (6,)  # acgan's D reads no label


@pytest.mark.parametrize("model", ["dcgan", "mlp", "stylegan2"])
def test_a_labelled_conditioning_on_data_without_labels_is_one_line(model):
    spec = DataSpec(SMALL[model][1].shape)
    with pytest.raises(UserError, match="conditioning=test needs class labels, and the data "
                       "has none") as error:
        build(model, d="projection" if model != "mlp" else "concat", spec=spec)
    assert "dataset.labels=folders" in str(error.value)


@pytest.mark.parametrize("model, options, fragment", [
    ("stylegan2", {"d": "concat"}, "conditioning.d=concat"),
    ("stylegan2", {"g": "cbn", "d": "projection"}, "conditioning.g=cbn"),
    ("mlp", {"g": "cbn", "d": "projection"}, "conditioning.g=cbn"),
    ("stylegan2", {"categorical": [4]}, "does not take InfoGAN's codes"),
])
def test_a_way_a_model_cannot_condition_is_one_line(model, options, fragment):
    with pytest.raises(UserError, match=fragment):
        build(model, **options)


@pytest.mark.parametrize("options, fragment", [
    ({"g": "cbn"}, "conditioning.g='cbn' is not valid"),
    ({"d": "projection", "categorical": [10]}, "conditioning.d='projection' is not valid"),
    ({"categorical": [1]}, "conditioning.categorical"),
    ({"d": "classify"}, "conditioning.d='classify'"),
    ({"acgan_weight": 0.0}, "conditioning.acgan_weight"),
])
def test_conditioning_values_are_checked(options, fragment):
    with pytest.raises(UserError, match=fragment):
        ConditioningConfig(**options)


@pytest.mark.parametrize("option", ["none", "concat", "projection", "acgan", "infogan"])
def test_each_conditioning_option_builds_dcgan_through_the_stored_config(option):
    cfg = compose_config([f"conditioning={option}", "model.channels=4",
                          "dataset.resolution=16"])
    assert validated(cfg).conditioning.name == option
    pair = build_networks(as_dict(cfg), DataSpec((1, 16, 16), 10), "the test")
    z = sample_latents(pair.G, 2)
    c = sample_classes(pair.G, 2)
    assert pair.D(pair.G(z, c), c).shape == (2,)


def test_a_config_from_before_conditioning_builds_an_unconditional_pair():
    config = as_dict(compose_config(["model.channels=4"]))
    del config["conditioning"]
    pair = build_networks(config, DataSpec((1, 32, 32), 10), "an old checkpoint")
    assert pair.G.num_classes == 0 and pair.G.codes is None


# --- the one latent sampler ----------------------------------------------------------------------


def test_a_model_without_codes_draws_exactly_the_standard_normal_latents():
    pair = MODELS.get("dcgan")(*SMALL["dcgan"])
    z = sample_latents(pair.G, 5, torch.Generator().manual_seed(3))
    assert torch.equal(z, torch.randn(5, 8, generator=torch.Generator().manual_seed(3)))


def test_infogan_latents_are_noise_then_one_hot_then_uniform_codes():
    pair = build("dcgan", categorical=[4, 3], continuous=2)
    codes = pair.G.codes
    assert codes == LatentCodes(8, (4, 3), 2) and pair.G.z_dim == 8 + 4 + 3 + 2
    z = sample_latents(pair.G, 500, torch.Generator().manual_seed(0))
    noise, indices, continuous = codes.split(z)
    one_hot = z[:, 8:15]
    assert set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(one_hot[:, :4].sum(1), torch.ones(500))
    assert indices.shape == (500, 2) and set(indices[:, 1].tolist()) == {0, 1, 2}
    assert continuous.min() >= -1 and continuous.max() <= 1 and continuous.std() > 0.5
    assert torch.equal(codes.join(noise, indices, continuous), z)
    assert torch.equal(noise, torch.randn(500, 8, generator=torch.Generator().manual_seed(0)))


def test_the_q_head_shares_ds_trunk_and_reads_every_code():
    pair = build("dcgan", categorical=[4, 3], continuous=2)
    x = pair.G.eval()(sample_latents(pair.G, 6))
    logits, heads = pair.D.heads(x)
    assert heads["code_logits"].shape == (6, 7) and heads["code_mean"].shape == (6, 2)
    assert torch.equal(pair.D(x), logits)


def test_infogan_on_the_mlp_has_its_q_head_too():
    pair = build("mlp", continuous=1)
    heads = pair.D.heads(pair.G(sample_latents(pair.G, 3)))[1]
    assert heads["code_logits"].shape == (3, 0) and heads["code_mean"].shape == (3, 1)


def test_fake_labels_are_uniform_or_follow_the_class_counts_and_unconditional_g_draws_none():
    pair = build("dcgan", "cbn", "projection")
    generator = torch.Generator().manual_seed(0)
    uniform = sample_classes(pair.G, 5000, generator)
    assert uniform.dtype == torch.int64 and set(uniform.tolist()) == set(range(K))
    skewed = sample_classes(pair.G, 5000, generator, counts=(0, 1, 1, 2, 0))
    shares = torch.bincount(skewed, minlength=K) / 5000
    assert shares[0] == shares[4] == 0 and abs(shares[3] - 0.5) < 0.03
    plain = MODELS.get("dcgan")(*SMALL["dcgan"])
    state = generator.get_state()
    assert sample_classes(plain.G, 4, generator) is None
    assert torch.equal(generator.get_state(), state)  # nothing drawn


# --- StyleGAN2 ------------------------------------------------------------------------------------


def test_stylegan2_truncates_towards_each_classs_own_average_w():
    pair = build("stylegan2", d="projection")
    G = pair.G.eval()
    with torch.no_grad():
        G.mapping.w_avg_class.normal_()
    z = torch.randn(K, 8)
    ws = G.mapping(z, torch.arange(K), psi=0.0)
    assert torch.equal(ws[:, 0], G.mapping.w_avg_class)
    half = G.mapping(z, torch.arange(K), psi=0.5, cutoff=2)
    free = G.mapping(z, torch.arange(K))
    torch.testing.assert_close(half[:, :2], (free[:, :2] + G.mapping.w_avg_class[:, None]) / 2)
    assert torch.equal(half[:, 2:], free[:, 2:])


def test_stylegan2_tracks_the_average_w_of_the_classes_in_each_batch_only():
    pair = build("stylegan2", d="projection")
    mapping = pair.G.mapping.train()
    z, c = torch.randn(4, 8), torch.tensor([1, 1, 3, 3])
    before = mapping.w_avg_class.clone()
    w = mapping(z, c)[:, 0].detach()
    for k in (1, 3):
        expected = w[c == k].mean(0).lerp(before[k], W_AVG_BETA)
        torch.testing.assert_close(mapping.w_avg_class[k], expected)
    for k in (0, 2, 4):
        assert torch.equal(mapping.w_avg_class[k], before[k])
    torch.testing.assert_close(mapping.w_avg, w.mean(0).lerp(torch.zeros(8), W_AVG_BETA))


def test_stylegan2_mixes_styles_within_a_class_in_training():
    pair = build("stylegan2", d="projection")
    G = pair.G.train()
    z, c = batch(pair)
    assert G(z, c).shape == (6, 1, 16, 16)
    assert G.styles(z, c).shape == (6, G.num_ws, 8)


def test_stylegan2_mapping_refuses_psi_in_the_place_of_the_class():
    pair = build("stylegan2")
    with pytest.raises(TypeError, match="by keyword"):
        pair.G.mapping(torch.randn(2, 8), 0.5)


# --- no host reads -------------------------------------------------------------------------------


class RefuseHostReads(TorchDispatchMode):
    """Reading a tensor's value on the host waits for the device: refused here."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default):
            raise AssertionError(f"{func} reads a device value on the host")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("model, g, d", [*COMBOS, ("dcgan", "auto", "none")])
def test_a_conditional_training_pass_reads_nothing_on_the_host(model, g, d):
    options = {"categorical": [3], "continuous": 1} if d == "none" else {}
    pair = build(model, g, d, **options)
    pair.G.train()
    z, c = batch(pair)
    c = c if d != "none" else None
    with RefuseHostReads():
        logits, heads = pair.D.heads(pair.G(z, c), c)
        (logits.sum() + sum(h.sum() for h in heads.values())).backward()
