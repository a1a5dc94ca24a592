"""Small building blocks shared by the simple models."""

from __future__ import annotations

from torch import nn


def maybe_spectral(layer: nn.Module, enabled: bool) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) keeps D's Lipschitz constant near 1."""
    return nn.utils.parametrizations.spectral_norm(layer) if enabled else layer


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) weights as in the DCGAN paper; batch-norm scales around 1."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
