"""The mapping network z -> w, and the truncation trick that pulls w towards its average.

An MLP lets the intermediate latent space W follow the data's factors of variation instead of
the fixed Gaussian of z (Karras et al. 2019). Its layers learn 100x slower (``lr_mult`` 0.01)
so that W does not drift faster than the synthesis network can follow.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from gan_runner.models.stylegan2.layers import EqualLinear

W_AVG_BETA = 0.995  # the running average of w keeps this much of its old value per call
PIXEL_NORM_EPS = 1e-8


def normalize_2nd_moment(x: Tensor) -> Tensor:
    """Scale each z onto the sphere of radius sqrt(z_dim), where Gaussian latents concentrate."""
    return x * (x.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPS).rsqrt()


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> ws (N, num_ws, w_dim): one w per synthesis layer, all equal here; style
    mixing and truncation are what make them differ.

    In training mode every call moves the buffer ``w_avg`` towards the batch mean of w, so the
    EMA generator (which copies buffers) truncates towards the same centre.
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, layers: int = 8,
                 lr_mult: float = 0.01) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        widths = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*(EqualLinear(i, o, lr_mult=lr_mult, activate=True)
                                   for i, o in pairwise(widths)))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        """``psi`` < 1 trades variety for typicality: w_avg + psi (w - w_avg) on the first
        ``cutoff`` layers (all when None), which hold the coarse styles."""
        w = self.net(normalize_2nd_moment(z))
        if self.training:
            with torch.no_grad():
                batch_mean = w.detach().mean(dim=0).to(self.w_avg.dtype)
                self.w_avg.copy_(batch_mean.lerp(self.w_avg, W_AVG_BETA))
        ws = w[:, None, :].repeat(1, self.num_ws, 1)
        if psi != 1.0:
            head = slice(None, cutoff)
            ws[:, head] = self.w_avg.to(ws.dtype).lerp(ws[:, head], psi)
        return ws
