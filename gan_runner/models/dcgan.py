"""DCGAN (Radford et al. 2016) with depth set by the resolution and width by ``channels``.

G starts from a 4x4 map and doubles the side with each transposed convolution; D mirrors it.
The width at side ``r`` is ``channels * (resolution / 2) / r`` capped at ``max_channels``: the
last hidden layer has ``channels`` maps and each octave down doubles them (the paper's ngf/ndf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from gan_runner.core.checks import require
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, GanPair
from gan_runner.models.layers import dcgan_init, maybe_spectral


@dataclass
class DCGANConfig:
    """DCGAN G/D whose depth follows the resolution: one up/down-sampling block per octave."""

    name: str = "dcgan"
    z_dim: int = 100
    channels: int = 64  # width of the last hidden layer (ngf/ndf); doubles per octave down
    max_channels: int = 512
    spectral_norm: bool = False  # on D
    d_batchnorm: bool = False  # off by default: batch norm in D breaks gradient penalties

    def __post_init__(self) -> None:
        require(self.z_dim > 0, "model.z_dim", self.z_dim, "a positive latent size")
        require(self.channels > 0, "model.channels", self.channels, "a positive width")
        require(self.max_channels >= self.channels, "model.max_channels", self.max_channels,
                f"at least model.channels={self.channels}")


def _width(cfg: DCGANConfig, resolution: int, side: int) -> int:
    return min(cfg.channels * resolution // (2 * side), cfg.max_channels)


def _sides(resolution: int) -> list[int]:
    """4, 8, ..., resolution."""
    return [2**k for k in range(2, int(math.log2(resolution)) + 1)]


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: DCGANConfig, channels: int, resolution: int) -> None:
        super().__init__()
        self.z_dim = cfg.z_dim
        sides = _sides(resolution)
        first = _width(cfg, resolution, 4)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.z_dim, first, 4, 1, 0, bias=False),
            nn.BatchNorm2d(first), nn.ReLU(True)]
        for side in sides[1:-1]:
            width = _width(cfg, resolution, side)
            layers += [nn.ConvTranspose2d(_width(cfg, resolution, side // 2), width, 4, 2, 1,
                                          bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(_width(cfg, resolution, resolution // 2), channels, 4, 2, 1),
                   nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg: DCGANConfig, channels: int, resolution: int) -> None:
        super().__init__()
        sn = cfg.spectral_norm
        sides = _sides(resolution)[::-1]  # resolution, ..., 4
        layers: list[nn.Module] = [
            maybe_spectral(nn.Conv2d(channels, _width(cfg, resolution, sides[1]), 4, 2, 1), sn),
            nn.LeakyReLU(0.2, True)]
        for side in sides[2:]:
            width = _width(cfg, resolution, side)
            layers.append(maybe_spectral(
                nn.Conv2d(_width(cfg, resolution, side * 2), width, 4, 2, 1), sn))
            if cfg.d_batchnorm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(maybe_spectral(nn.Conv2d(_width(cfg, resolution, 4), 1, 4, 1, 0), sn))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten()


@MODELS.register("dcgan", schema=DCGANConfig)
def build_dcgan(cfg: DCGANConfig, spec: DataSpec) -> GanPair:
    if not spec.is_image:
        raise UserError("model=dcgan needs image data", "use model=mlp for the toy_* datasets")
    resolution = spec.resolution
    if resolution < 8 or resolution & (resolution - 1):
        raise UserError(f"model=dcgan cannot build dataset.resolution={resolution}",
                        "use a power of two of at least 8, e.g. 32 or 64")
    channels = spec.shape[0]
    return GanPair(DCGANGenerator(cfg, channels, resolution),
                   DCGANDiscriminator(cfg, channels, resolution))
