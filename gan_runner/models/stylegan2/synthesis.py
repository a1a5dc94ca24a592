"""The synthesis network: ws -> image, from a learned 4x4 constant up to the full resolution.

Each resolution has two modulated 3x3 convolutions (the first upsamples; the 4x4 block has one)
with noise, and an RGB output. The outputs of all resolutions are upsampled and summed (the
"skip" generator of StyleGAN2), so low resolutions shape the image early in training without
progressive growing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_runner.models.stylegan2.layers import (
    ConvClamp,
    ModulatedConv2d,
    NoiseInjection,
    Upsample2x,
    lrelu,
)


class StyledConv(nn.Module):
    """Modulated 3x3 convolution, noise, bias and leaky ReLU: one use of one w (clamped in
    float16, see ``ConvClamp``)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *,
                 up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        self.noise = NoiseInjection(resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.clamp = ConvClamp()

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        x = self.noise(self.conv(x, w), noise_mode)
        return self.clamp(lrelu(x + self.bias[:, None, None]))


class ToRGB(nn.Module):
    """Modulated 1x1 projection to image channels; not demodulated, so styles set its scale."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.clamp = ConvClamp()

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.clamp(self.conv(x, w) + self.bias[:, None, None])


class SynthesisBlock(nn.Module):
    """One resolution; ``in_channels`` None marks the 4x4 block, which starts from the
    constant and has nothing to upsample."""

    def __init__(self, in_channels: int | None, out_channels: int, img_channels: int,
                 w_dim: int, resolution: int) -> None:
        super().__init__()
        convs = []
        if in_channels is not None:
            convs.append(StyledConv(in_channels, out_channels, w_dim, resolution, up=True))
        convs.append(StyledConv(out_channels, out_channels, w_dim, resolution))
        self.convs = nn.ModuleList(convs)
        self.to_rgb = ToRGB(out_channels, img_channels, w_dim)
        self.upsample = Upsample2x() if in_channels is not None else None

    def forward(self, x: Tensor, img: Tensor | None, ws: Tensor,
                noise_mode: str) -> tuple[Tensor, Tensor]:
        """``ws`` (N, len(convs) + 1, w_dim): one w per convolution, the last for the RGB."""
        for index, conv in enumerate(self.convs):
            x = conv(x, ws[:, index], noise_mode)
        rgb = self.to_rgb(x, ws[:, len(self.convs)])
        img = rgb if img is None else self.upsample(img) + rgb
        return x, img


class SynthesisNetwork(nn.Module):
    """``widths`` maps each resolution (4, 8, ..., the output side) to its channel count.

    A block's RGB layer shares its w with the next block's first convolution, as in the
    reference, so there are ``num_ws`` = 2 log2(resolution) - 2 styles.
    """

    def __init__(self, w_dim: int, img_channels: int, widths: dict[int, int]) -> None:
        super().__init__()
        resolutions = sorted(widths)
        self.resolution = resolutions[-1]
        self.const = nn.Parameter(torch.randn(widths[4], 4, 4))
        self.blocks = nn.ModuleList(
            SynthesisBlock(widths[res // 2] if res > 4 else None, widths[res], img_channels,
                           w_dim, res)
            for res in resolutions)
        self.num_ws = sum(len(block.convs) for block in self.blocks) + 1

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        """ws (N, num_ws, w_dim) -> images (N, C, resolution, resolution), not clamped: the
        adversarial loss keeps them near [-1, 1] and clamping would cut gradients."""
        x = self.const.expand(len(ws), *self.const.shape)
        img = None
        first = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, first:first + len(block.convs) + 1], noise_mode)
            first += len(block.convs)
        return img
