"""The mapping network z -> w, and the truncation trick that pulls w towards its average.

An MLP lets the intermediate latent space W follow the data's factors of variation instead of
the fixed Gaussian of z (Karras et al. 2019). Its layers learn 100x slower (``lr_mult`` 0.01)
so that W does not drift faster than the synthesis network can follow.

A class-conditional mapping (StyleGAN2-ADA's ``c_dim``) embeds the one-hot label, normalizes
the embedding as it normalizes z and feeds both, joined, to the MLP; it also keeps each class's
average w, so that truncation pulls a sample towards its own class's centre.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from gan_runner.models.conditioning import check_generator_labels, one_hot
from gan_runner.models.stylegan2.layers import EqualLinear

W_AVG_BETA = 0.995  # the running average of w keeps this much of its old value per call
PIXEL_NORM_EPS = 1e-8


def normalize_2nd_moment(x: Tensor) -> Tensor:
    """Scale each z onto the sphere of radius sqrt(z_dim), where Gaussian latents concentrate."""
    return x * (x.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPS).rsqrt()


def embed_label(embed: EqualLinear, c: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """The normalized embedding of one-hot labels (G's and D's mappings start from it)."""
    return normalize_2nd_moment(embed(one_hot(c, num_classes, dtype)))


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> ws (N, num_ws, w_dim): one w per synthesis layer, all equal here; style
    mixing and truncation are what make them differ.

    In training mode every call moves the buffer ``w_avg`` towards the batch mean of w, so the
    EMA generator (which copies buffers) truncates towards the same centre; a conditional
    mapping moves each class's ``w_avg_class`` row towards the batch mean of that class's w
    (rows of classes absent from the batch stay), on the device, without a sync.
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, layers: int = 8,
                 lr_mult: float = 0.01, num_classes: int = 0, embed_dim: int = 0) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.num_classes = num_classes
        embed_dim = (embed_dim or w_dim) if num_classes else 0
        self.embed = EqualLinear(num_classes, embed_dim) if num_classes else None
        widths = [z_dim + embed_dim] + [w_dim] * layers
        self.net = nn.Sequential(*(EqualLinear(i, o, lr_mult=lr_mult, activate=True)
                                   for i, o in pairwise(widths)))
        self.register_buffer("w_avg", torch.zeros(w_dim))
        if num_classes:
            self.register_buffer("w_avg_class", torch.zeros(num_classes, w_dim))

    def forward(self, z: Tensor, c: Tensor | None = None, psi: float = 1.0,
                cutoff: int | None = None) -> Tensor:
        """``psi`` < 1 trades variety for typicality: w_avg + psi (w - w_avg) on the first
        ``cutoff`` layers (all when None), which hold the coarse styles; a conditional
        mapping takes each sample's class average for w_avg."""
        if c is not None and not isinstance(c, Tensor):
            raise TypeError("c is a tensor of class indices or None (pass psi and cutoff by "
                            "keyword)")
        check_generator_labels(self.num_classes, c)
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            x = torch.cat([x, embed_label(self.embed, c, self.num_classes, z.dtype)], dim=1)
        w = self.net(x)
        if self.training:
            self._track(w.detach(), c)
        ws = w[:, None, :].repeat(1, self.num_ws, 1)
        if psi != 1.0:
            head = slice(None, cutoff)
            centre = self.w_avg if c is None else self.w_avg_class[c][:, None]
            ws[:, head] = centre.to(ws.dtype).lerp(ws[:, head], psi)
        return ws

    @torch.no_grad()
    def _track(self, w: Tensor, c: Tensor | None) -> None:
        self.w_avg.copy_(w.mean(dim=0).to(self.w_avg.dtype).lerp(self.w_avg, W_AVG_BETA))
        if c is None:
            return
        w = w.to(self.w_avg.dtype)
        sums = torch.zeros_like(self.w_avg_class).index_add_(0, c, w)
        counts = torch.zeros(self.num_classes, 1, dtype=w.dtype, device=w.device).index_add_(
            0, c, torch.ones(len(c), 1, dtype=w.dtype, device=w.device))
        moved = (sums / counts.clamp(min=1)).lerp(self.w_avg_class, W_AVG_BETA)
        self.w_avg_class.copy_(torch.where(counts > 0, moved, self.w_avg_class))
