"""StyleGAN2 (Karras et al. 2020) in plain PyTorch; importing it registers ``model=stylegan2``
and its alias ``model=stylegan``."""

from gan_runner.models.stylegan2.discriminator import Discriminator
from gan_runner.models.stylegan2.networks import (
    Generator,
    StyleGAN2Config,
    build_stylegan2,
    channel_widths,
    mix_styles,
)

__all__ = [
    "Discriminator",
    "Generator",
    "StyleGAN2Config",
    "build_stylegan2",
    "channel_widths",
    "mix_styles",
]
