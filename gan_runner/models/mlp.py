"""Fully connected G and D for low-dimensional data such as the 2-D mixtures.

Conditional: the label (one-hot or embedded) is joined to z and to D's input (``concat``), or
D projects it onto its last hidden features, or predicts it (acgan); the toy sets' labels are
their modes' indices. InfoGAN's Q head sits on D's last hidden layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan_runner.core.checks import require
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, GanPair
from gan_runner.models.conditioning import (
    UNCONDITIONAL,
    Conditioning,
    ConditioningConfig,
    CriticHeads,
    LabelInput,
    LatentCodes,
    check_generator_labels,
    check_labels,
    resolve,
)
from gan_runner.models.layers import maybe_spectral


@dataclass
class MLPConfig:
    """Fully connected G and D for low-dimensional data (the 2-D toy sets)."""

    name: str = "mlp"
    z_dim: int = 16
    hidden: int = 256
    layers: int = 3
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        require(self.z_dim > 0, "model.z_dim", self.z_dim, "a positive latent size")
        require(self.hidden > 0, "model.hidden", self.hidden, "a positive width")
        require(self.layers >= 1, "model.layers", self.layers, "at least 1 hidden layer")


def _label_input(cond: Conditioning, way: str) -> LabelInput | None:
    return LabelInput(cond.num_classes, cond.embed_dim) if way == "concat" else None


class MLPGenerator(nn.Module):
    def __init__(self, cfg: MLPConfig, out_dim: int, cond: Conditioning = UNCONDITIONAL
                 ) -> None:
        super().__init__()
        self.num_classes = cond.num_classes
        self.codes = (LatentCodes(cfg.z_dim, cond.categorical, cond.continuous)
                      if cond.has_codes else None)
        self.z_dim = cfg.z_dim + cond.code_dim
        self.label = _label_input(cond, cond.g)
        layers: list[nn.Module] = []
        width = self.z_dim + (self.label.dim if self.label is not None else 0)
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.ReLU()]
            width = cfg.hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, out_dim))

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        check_generator_labels(self.num_classes, c)
        if self.label is not None:
            z = torch.cat([z, self.label(c).to(z.dtype)], dim=1)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    def __init__(self, cfg: MLPConfig, in_dim: int, cond: Conditioning = UNCONDITIONAL
                 ) -> None:
        super().__init__()
        sn = cfg.spectral_norm
        self.num_classes = cond.num_classes
        self.takes_labels = cond.d in ("concat", "projection")
        self.label = _label_input(cond, cond.d)
        layers: list[nn.Module] = []
        width = in_dim + (self.label.dim if self.label is not None else 0)
        for _ in range(cfg.layers):
            layers += [maybe_spectral(nn.Linear(width, cfg.hidden), sn), nn.LeakyReLU(0.2)]
            width = cfg.hidden
        self.net = nn.Sequential(*layers, maybe_spectral(nn.Linear(width, 1), sn))
        needs_heads = cond.d in ("projection", "acgan") or cond.has_codes
        self.aux = (CriticHeads(cond, width, lambda n: maybe_spectral(nn.Linear(width, n), sn),
                                lambda m: maybe_spectral(m, sn)) if needs_heads else None)

    def heads(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The logits and the auxiliary heads' outputs, from one pass through the trunk."""
        check_labels(self.takes_labels, c, "discriminator")
        if self.label is not None:
            x = torch.cat([x, self.label(c).to(x.dtype)], dim=1)
        features = self.net[:-1](x)
        logits = self.net[-1](features).squeeze(1)
        if self.aux is None:
            return logits, {}
        return self.aux(features, logits, c)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.heads(x, c)[0]


@MODELS.register("mlp", schema=MLPConfig)
def build_mlp(cfg: MLPConfig, spec: DataSpec,
              conditioning: ConditioningConfig | None = None) -> GanPair:
    if spec.is_image:
        raise UserError("model=mlp is for point data such as dataset=toy_grid25",
                        "use model=dcgan or model=stylegan2 for images")
    cond = resolve(conditioning, spec, "mlp", g_ways=("concat",),
                   d_ways=("concat", "projection", "acgan"), codes=True)
    return GanPair(MLPGenerator(cfg, spec.shape[0], cond),
                   MLPDiscriminator(cfg, spec.shape[0], cond))
