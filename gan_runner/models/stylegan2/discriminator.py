"""StyleGAN2's residual discriminator: image -> one logit per sample.

Residual blocks halve the side down to 4x4; there the minibatch standard deviation tells D how
varied the batch is, so a generator that collapses to a few modes is easy to spot
(Karras et al. 2018).

Conditional as StyleGAN2-ADA: the label goes through a mapping network of its own (embedding,
normalization, MLP) to a vector ``cmap`` as wide as the 4x4 features, and the logit is the
inner product of ``cmap`` with D's last layer, now ``cmap``-wide, over sqrt(width): projection.
An acgan D keeps its one logit and adds a class head beside it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan_runner.models.conditioning import UNCONDITIONAL, Conditioning, check_labels
from gan_runner.models.stylegan2.layers import EqualConv2d, EqualLinear
from gan_runner.models.stylegan2.mapping import embed_label

RESIDUAL_GAIN = math.sqrt(0.5)  # the sum of two unit-variance branches, back to unit variance
MBSTD_EPS = 1e-8


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions (the second halves the side) beside a 1x1 downsampling shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activate=False,
                                down=True)

    def forward(self, x: Tensor) -> Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * RESIDUAL_GAIN


def group_size_for(batch: int, group_size: int) -> int:
    """The largest group of at most ``group_size`` samples that divides the batch, so any
    batch size works (the reference requires a multiple of the group size)."""
    return next(g for g in range(min(group_size, batch), 0, -1) if batch % g == 0)


class MinibatchStd(nn.Module):
    """Appends one channel: the standard deviation of each feature over a group of samples,
    averaged over features and pixels, shared by every sample of the group. Sample i belongs
    to group i mod (N / group size), as in the reference."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        group = group_size_for(n, self.group_size)
        grouped = x.reshape(group, n // group, c, h, w)
        std = (grouped.var(dim=0, unbiased=False) + MBSTD_EPS).sqrt().mean(dim=(1, 2, 3))
        return torch.cat([x, std.repeat(group)[:, None, None, None].expand(n, 1, h, w)], dim=1)


class LabelMapping(nn.Module):
    """A label -> ``cmap`` (N, dim): its normalized embedding through an MLP of ``layers``
    layers learning at ``lr_mult`` (the reference's D maps the label with the mapping network
    it gives G)."""

    def __init__(self, num_classes: int, dim: int, layers: int, lr_mult: float) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = EqualLinear(num_classes, dim)
        self.net = nn.Sequential(*(EqualLinear(dim, dim, lr_mult=lr_mult, activate=True)
                                   for _ in range(layers)))

    def forward(self, c: Tensor, dtype: torch.dtype) -> Tensor:
        return self.net(embed_label(self.embed, c, self.num_classes, dtype))


class Discriminator(nn.Module):
    """``widths`` maps each resolution (4, 8, ..., the input side) to its channel count."""

    def __init__(self, img_channels: int, widths: dict[int, int], mbstd_group: int = 4,
                 cond: Conditioning = UNCONDITIONAL, mapping_layers: int = 8,
                 mapping_lr_mult: float = 0.01) -> None:
        super().__init__()
        self.num_classes = cond.num_classes
        self.takes_labels = cond.d == "projection"
        resolutions = sorted(widths, reverse=True)
        self.from_rgb = EqualConv2d(img_channels, widths[resolutions[0]], 1)
        self.blocks = nn.Sequential(*(DiscriminatorBlock(widths[res], widths[res // 2])
                                      for res in resolutions[:-1]))
        width = widths[4]
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = EqualConv2d(width + 1, width, 3)
        self.fc = EqualLinear(width * 4 * 4, width, activate=True)
        self.out = EqualLinear(width, width if self.takes_labels else 1)
        self.cmap = (LabelMapping(cond.num_classes, width, mapping_layers, mapping_lr_mult)
                     if self.takes_labels else None)
        self.classifier = EqualLinear(width, cond.num_classes) if cond.d == "acgan" else None

    def heads(self, images: Tensor, c: Tensor | None = None
              ) -> tuple[Tensor, dict[str, Tensor]]:
        """(N, C, H, W) -> logits (N,), and the acgan head's class logits (N, K) if it has
        one, from one pass through the trunk."""
        check_labels(self.takes_labels, c, "discriminator")
        x = self.conv(self.mbstd(self.blocks(self.from_rgb(images))))
        features = self.fc(x.flatten(1))
        out = self.out(features)
        if self.cmap is None:
            logits = out.squeeze(1)
        else:
            logits = (out * self.cmap(c, out.dtype)).sum(1) / math.sqrt(out.shape[1])
        if self.classifier is None:
            return logits, {}
        return logits, {"class_logits": self.classifier(features)}

    def forward(self, images: Tensor, c: Tensor | None = None) -> Tensor:
        """(N, C, H, W) -> logits (N,)."""
        return self.heads(images, c)[0]
