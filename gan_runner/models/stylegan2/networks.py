"""The StyleGAN2 generator (mapping + synthesis, with style mixing and truncation) and its
registration as ``model=stylegan2`` (alias ``model=stylegan``).

Class-conditional as StyleGAN2-ADA: G takes the label in its mapping network, D by projection
onto a mapping of the label (or an acgan head); InfoGAN's codes are refused, since style
mixing would swap a second latent's noise in for the codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from gan_runner.core.checks import require
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, GanPair
from gan_runner.models.conditioning import ConditioningConfig, resolve
from gan_runner.models.stylegan2.discriminator import Discriminator
from gan_runner.models.stylegan2.layers import FP16_CONV_CLAMP, set_conv_clamp
from gan_runner.models.stylegan2.mapping import MappingNetwork
from gan_runner.models.stylegan2.synthesis import SynthesisNetwork

MIN_RESOLUTION = 8


@dataclass
class StyleGAN2Config:
    """StyleGAN2 with skip G and residual D; widths min(channel_base / side, channel_max)."""

    # the model= option that trains in CPU minutes per kimg, named when a run forecasts hours
    cpu_alternative: ClassVar[str] = "stylegan2_tiny"
    name: str = "stylegan2"
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_mult: float = 0.01
    channel_base: int = 16384
    channel_max: int = 512
    mixing_prob: float = 0.9  # share of training samples whose styles switch to a second z
    mbstd_group: int = 4
    # float16 only (trainer.precision=fp16): activations clamped to +-conv_clamp as the
    # reference's (see layers.ConvClamp); null: no clamp. fp32 and bf16 are never clamped.
    conv_clamp: float | None = FP16_CONV_CLAMP

    def __post_init__(self) -> None:
        for key in ("z_dim", "w_dim", "channel_base", "channel_max"):
            value = getattr(self, key)
            require(value > 0, f"model.{key}", value, "a positive size")
        require(self.mapping_layers >= 1, "model.mapping_layers", self.mapping_layers,
                "at least 1 layer")
        require(self.mapping_lr_mult > 0, "model.mapping_lr_mult", self.mapping_lr_mult,
                "a positive learning-rate multiplier (0.01 in StyleGAN2)")
        require(0 <= self.mixing_prob <= 1, "model.mixing_prob", self.mixing_prob,
                "a probability in [0, 1]")
        require(self.mbstd_group >= 1, "model.mbstd_group", self.mbstd_group,
                "a group size of at least 1")
        require(self.conv_clamp is None or self.conv_clamp > 0, "model.conv_clamp",
                self.conv_clamp, "a positive bound or null (256 in StyleGAN2-ADA's fp16)")


def channel_widths(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels at each side 4, 8, ..., resolution: fewer channels where there are more pixels."""
    sides = (2**k for k in range(2, int(math.log2(resolution)) + 1))
    return {side: min(channel_base // side, channel_max) for side in sides}


def mix_styles(ws: Tensor, other: Tensor, crossover: Tensor) -> Tensor:
    """Sample i keeps its own styles before layer ``crossover[i]`` and takes ``other``'s from
    there on; a crossover of num_ws means no mixing."""
    layers = torch.arange(ws.shape[1], device=ws.device)
    from_other = layers[None, :] >= crossover[:, None]
    return torch.where(from_other[:, :, None], other, ws)


class Generator(nn.Module):
    """z -> image. In training mode a share ``mixing_prob`` of the samples mixes in the styles
    of a second latent from a random layer on (style mixing regularization), so that adjacent
    styles do not learn to depend on each other; eval mode never mixes."""

    def __init__(self, cfg: StyleGAN2Config, img_channels: int, widths: dict[int, int],
                 num_classes: int = 0, embed_dim: int = 0) -> None:
        super().__init__()
        self.synthesis = SynthesisNetwork(cfg.w_dim, img_channels, widths)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, self.num_ws, cfg.mapping_layers,
                                      cfg.mapping_lr_mult, num_classes, embed_dim)
        self.z_dim, self.w_dim = cfg.z_dim, cfg.w_dim
        self.num_classes, self.codes = num_classes, None
        self.mixing_prob = cfg.mixing_prob

    def styles(self, z: Tensor, c: Tensor | None = None, psi: float = 1.0,
               cutoff: int | None = None) -> Tensor:
        """ws (N, num_ws, w_dim) for ``z`` (of class ``c``), truncated and (in training)
        mixed with a second latent of the same class."""
        if not (self.training and self.mixing_prob > 0):
            return self.mapping(z, c, psi, cutoff)
        # one mapping pass for both latents: one w_avg update per step, as without mixing
        both = None if c is None else torch.cat([c, c])
        ws, other = self.mapping(torch.cat([z, torch.randn_like(z)]), both, psi,
                                 cutoff).chunk(2)
        return mix_styles(ws, other, self._crossover(len(z), z.device))

    def _crossover(self, n: int, device: torch.device) -> Tensor:
        """Per sample: a layer in [1, num_ws) with probability ``mixing_prob``, else num_ws."""
        layer = torch.randint(1, self.num_ws, (n,), device=device)
        mixed = torch.rand(n, device=device) < self.mixing_prob
        return torch.where(mixed, layer, torch.full_like(layer, self.num_ws))

    def forward(self, z: Tensor, c: Tensor | None = None, psi: float = 1.0,
                cutoff: int | None = None, noise_mode: str = "random") -> Tensor:
        return self.synthesis(self.styles(z, c, psi, cutoff), noise_mode)


@MODELS.register("stylegan2", schema=StyleGAN2Config)
def build_stylegan2(cfg: StyleGAN2Config, spec: DataSpec,
                    conditioning: ConditioningConfig | None = None) -> GanPair:
    if not spec.is_image:
        raise UserError(f"model={cfg.name} needs image data",
                        "use model=mlp for the toy_* datasets")
    channels, height, width = spec.shape
    if height != width or width < MIN_RESOLUTION or width & (width - 1):
        raise UserError(f"model={cfg.name} cannot build {height}x{width} images",
                        f"use square images whose side is a power of two of at least "
                        f"{MIN_RESOLUTION} (dataset.resolution=32, 64, 128 or 256)")
    widths = channel_widths(width, cfg.channel_base, cfg.channel_max)
    if widths[width] < 1:
        raise UserError(f"model.channel_base={cfg.channel_base} leaves no channels at "
                        f"{width}x{width}", f"use model.channel_base >= {width}")
    cond = resolve(conditioning, spec, cfg.name, g_ways=("concat",),
                   d_ways=("projection", "acgan"), codes=False)
    pair = GanPair(Generator(cfg, channels, widths, cond.num_classes, cond.embed_dim),
                   Discriminator(channels, widths, cfg.mbstd_group, cond, cfg.mapping_layers,
                                 cfg.mapping_lr_mult))
    for network in (pair.G, pair.D):
        set_conv_clamp(network, cfg.conv_clamp)
    return pair


# the original name selects the same networks; a registry entry, so `model=stylegan` validates
MODELS.register("stylegan", schema=StyleGAN2Config)(build_stylegan2)
