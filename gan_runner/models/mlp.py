"""Fully connected G and D for low-dimensional data such as the 2-D mixtures."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from gan_runner.core.checks import require
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, GanPair
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


class MLPGenerator(nn.Module):
    def __init__(self, cfg: MLPConfig, out_dim: int) -> None:
        super().__init__()
        self.z_dim = cfg.z_dim
        layers: list[nn.Module] = []
        width = cfg.z_dim
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.ReLU()]
            width = cfg.hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, out_dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    def __init__(self, cfg: MLPConfig, in_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(cfg.layers):
            layers += [maybe_spectral(nn.Linear(width, cfg.hidden), cfg.spectral_norm),
                       nn.LeakyReLU(0.2)]
            width = cfg.hidden
        self.net = nn.Sequential(*layers, maybe_spectral(nn.Linear(width, 1), cfg.spectral_norm))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


@MODELS.register("mlp", schema=MLPConfig)
def build_mlp(cfg: MLPConfig, spec: DataSpec) -> GanPair:
    if spec.is_image:
        raise UserError("model=mlp is for point data such as dataset=toy_grid25",
                        "use model=dcgan or model=stylegan2 for images")
    return GanPair(MLPGenerator(cfg, spec.shape[0]), MLPDiscriminator(cfg, spec.shape[0]))
