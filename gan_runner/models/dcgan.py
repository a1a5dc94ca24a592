"""DCGAN (Radford et al. 2016) with depth set by the resolution and width by ``channels``.

G starts from a 4x4 map and doubles the side with each transposed convolution; D mirrors it.
The width at side ``r`` is ``channels * (resolution / 2) / r`` capped at ``max_channels``: the
last hidden layer has ``channels`` maps and each octave down doubles them (the paper's ngf/ndf).

Conditional (``models.conditioning``): G takes the label joined to z (``concat``) or in its
batch norms (``cbn``, its ``auto``); D takes it as extra input channels (``concat``), by
projection onto its last 4x4 features (the input of its final layer), or predicts it with an
acgan head beside its logit; InfoGAN's Q head is such a head too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan_runner.core.checks import require
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, GanPair
from gan_runner.models.conditioning import (
    UNCONDITIONAL,
    ConditionalBatchNorm2d,
    Conditioning,
    ConditioningConfig,
    CriticHeads,
    LabelInput,
    LatentCodes,
    check_generator_labels,
    check_labels,
    resolve,
)
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
    def __init__(self, cfg: DCGANConfig, channels: int, resolution: int,
                 cond: Conditioning = UNCONDITIONAL) -> None:
        super().__init__()
        self.num_classes = cond.num_classes
        self.codes = (LatentCodes(cfg.z_dim, cond.categorical, cond.continuous)
                      if cond.has_codes else None)
        self.z_dim = cfg.z_dim + cond.code_dim
        self.label = (LabelInput(cond.num_classes, cond.embed_dim) if cond.g == "concat"
                      else None)
        self.cbn = cond.g == "cbn"

        def norm(width: int) -> nn.Module:
            return (ConditionalBatchNorm2d(width, cond.num_classes) if self.cbn
                    else nn.BatchNorm2d(width))

        sides = _sides(resolution)
        first = _width(cfg, resolution, 4)
        in_dim = self.z_dim + (self.label.dim if self.label is not None else 0)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, first, 4, 1, 0, bias=False), norm(first), nn.ReLU(True)]
        for side in sides[1:-1]:
            width = _width(cfg, resolution, side)
            layers += [nn.ConvTranspose2d(_width(cfg, resolution, side // 2), width, 4, 2, 1,
                                          bias=False), norm(width), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(_width(cfg, resolution, resolution // 2), channels, 4, 2, 1),
                   nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        check_generator_labels(self.num_classes, c)
        if self.label is not None:
            z = torch.cat([z, self.label(c).to(z.dtype)], dim=1)
        x = z[:, :, None, None]
        if not self.cbn:
            return self.net(x)
        for layer in self.net:
            x = layer(x, c) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg: DCGANConfig, channels: int, resolution: int,
                 cond: Conditioning = UNCONDITIONAL) -> None:
        super().__init__()
        sn = cfg.spectral_norm
        self.num_classes = cond.num_classes
        self.takes_labels = cond.d in ("concat", "projection")
        self.label = (LabelInput(cond.num_classes, cond.embed_dim) if cond.d == "concat"
                      else None)
        in_channels = channels + (self.label.dim if self.label is not None else 0)
        sides = _sides(resolution)[::-1]  # resolution, ..., 4
        layers: list[nn.Module] = [
            maybe_spectral(nn.Conv2d(in_channels, _width(cfg, resolution, sides[1]), 4, 2, 1),
                           sn),
            nn.LeakyReLU(0.2, True)]
        for side in sides[2:]:
            width = _width(cfg, resolution, side)
            layers.append(maybe_spectral(
                nn.Conv2d(_width(cfg, resolution, side * 2), width, 4, 2, 1), sn))
            if cfg.d_batchnorm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, True))
        last = _width(cfg, resolution, 4)
        layers.append(maybe_spectral(nn.Conv2d(last, 1, 4, 1, 0), sn))
        self.net = nn.Sequential(*layers)

        def head(outputs: int) -> nn.Module:  # a second final layer: outputs instead of 1
            return nn.Sequential(maybe_spectral(nn.Conv2d(last, outputs, 4, 1, 0), sn),
                                 nn.Flatten())

        needs_heads = cond.d in ("projection", "acgan") or cond.has_codes
        self.aux = (CriticHeads(cond, last * 16, head, lambda m: maybe_spectral(m, sn))
                    if needs_heads else None)
        self.apply(dcgan_init)

    def heads(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The logits and the auxiliary heads' outputs, from one pass through the trunk."""
        check_labels(self.takes_labels, c, "discriminator")
        if self.label is not None:
            labels = self.label(c).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, labels.expand(-1, -1, *x.shape[2:])], dim=1)
        features = self.net[:-1](x)
        logits = self.net[-1](features).flatten()
        if self.aux is None:
            return logits, {}
        return self.aux(features, logits, c)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.heads(x, c)[0]


@MODELS.register("dcgan", schema=DCGANConfig)
def build_dcgan(cfg: DCGANConfig, spec: DataSpec,
                conditioning: ConditioningConfig | None = None) -> GanPair:
    if not spec.is_image:
        raise UserError("model=dcgan needs image data", "use model=mlp for the toy_* datasets")
    resolution = spec.resolution
    if resolution < 8 or resolution & (resolution - 1):
        raise UserError(f"model=dcgan cannot build dataset.resolution={resolution}",
                        "use a power of two of at least 8, e.g. 32 or 64")
    cond = resolve(conditioning, spec, "dcgan", g_ways=("cbn", "concat"),
                   d_ways=("concat", "projection", "acgan"), codes=True)
    channels = spec.shape[0]
    return GanPair(DCGANGenerator(cfg, channels, resolution, cond),
                   DCGANDiscriminator(cfg, channels, resolution, cond))
