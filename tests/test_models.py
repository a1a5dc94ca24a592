"""Models build for the data they are given, or say why they cannot."""

from __future__ import annotations

import pytest
import torch

from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.dcgan import DCGANConfig, build_dcgan
from gan_runner.models.mlp import MLPConfig, build_mlp


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_depth_follows_the_resolution(resolution, channels):
    pair = build_dcgan(DCGANConfig(channels=4, z_dim=8), DataSpec((channels, resolution,
                                                                   resolution)))
    images = pair.G(torch.randn(2, 8))
    assert images.shape == (2, channels, resolution, resolution)
    assert images.abs().max() <= 1.0  # tanh output, the data range
    assert pair.D(images).shape == (2,)
    convs = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in pair.G.modules())
    assert convs == resolution.bit_length() - 2  # one per octave from 4x4, plus the 1x1 -> 4x4


def test_dcgan_width_follows_channels_and_is_capped():
    pair = build_dcgan(DCGANConfig(channels=8, max_channels=16, z_dim=4), DataSpec((1, 32, 32)))
    widths = [m.out_channels for m in pair.G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert widths == [16, 16, 8, 1]


def test_spectral_norm_is_applied_to_every_d_layer():
    pair = build_dcgan(DCGANConfig(channels=4, spectral_norm=True), DataSpec((1, 16, 16)))
    convs = [m for m in pair.D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)


@pytest.mark.parametrize("resolution", [4, 24, 48])
def test_dcgan_refuses_resolutions_it_cannot_build(resolution):
    with pytest.raises(UserError, match=f"resolution={resolution}"):
        build_dcgan(DCGANConfig(), DataSpec((1, resolution, resolution)))


def test_mlp_maps_latents_to_points_and_points_to_logits():
    pair = build_mlp(MLPConfig(z_dim=3, hidden=16, layers=2), DataSpec((2,)))
    points = pair.G(torch.randn(5, 3))
    assert points.shape == (5, 2) and pair.D(points).shape == (5,)


def test_models_refuse_the_wrong_kind_of_data():
    with pytest.raises(UserError, match="model=mlp"):
        build_mlp(MLPConfig(), DataSpec((1, 32, 32)))
    with pytest.raises(UserError, match="model=dcgan"):
        build_dcgan(DCGANConfig(), DataSpec((2,)))
