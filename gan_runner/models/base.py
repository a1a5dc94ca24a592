"""What every model provides to the training loop, and the registry that builds models.

A model factory receives its validated config, the data spec (shape and classes) and the run's
conditioning (``models.conditioning``; None: unconditional) and returns a ``GanPair``. The
generator maps latents ``z`` of shape (N, z_dim) and, when conditional, class indices ``c``
(int64, (N,)) to samples shaped like the data (images in [-1, 1]): ``G(z, c=None)``. The
discriminator maps samples (and their classes) to one logit per sample, shape (N,):
``D(x, c=None)``; ``D.heads(x, c)`` also returns its auxiliary heads' outputs from the same
trunk pass (``{"class_logits"}`` for acgan, ``{"code_logits", "code_mean"}`` for InfoGAN).
Every G has ``num_classes`` (0: unconditional) and ``codes`` (InfoGAN's ``LatentCodes``, or
None); every D has ``num_classes`` and ``heads``.

One sampler draws every latent (``sample_latents``) and one every fake label
(``sample_classes``), so training, metrics and figures agree on what a latent is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan_runner.core.devices import to_device
from gan_runner.core.errors import UserError
from gan_runner.core.registry import Registry
from gan_runner.models.conditioning import LatentCodes


@dataclass
class GanPair:
    """A generator (with a ``z_dim`` attribute) and a discriminator, built for one data shape."""

    G: nn.Module
    D: nn.Module


# builder(model config, data spec, conditioning config or None) -> GanPair
MODELS: Registry[Callable[..., GanPair]] = Registry("model", group="model")


def latent_codes(G: nn.Module) -> LatentCodes:
    """How ``G``'s latent is laid out: its InfoGAN codes, or noise alone."""
    codes = getattr(G, "codes", None)
    return codes if codes is not None else LatentCodes(G.z_dim)


def sample_latents(G: nn.Module, n: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> Tensor:
    """Latents for ``G``: standard-normal noise, then InfoGAN's codes if it has them (a
    model without codes draws ``randn(n, z_dim)``, as always). Drawn on the CPU so a seed
    gives the same z anywhere, and copied to ``device`` without making the host wait."""
    return to_device(latent_codes(G).draw(n, generator), torch.device(device))


def with_labels(net: Callable[..., Tensor], x: Tensor, c: Tensor | None) -> Tensor:
    """``net(x, c)`` for a conditional network, ``net(x)`` where there are no labels: the one
    call a plain G or D (or a test's stand-in without a ``c`` argument) also accepts."""
    return net(x) if c is None else net(x, c)


def num_classes(G: nn.Module) -> int:
    return getattr(G, "num_classes", 0)


def sample_classes(G: nn.Module, n: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu",
                   counts: tuple[int, ...] = ()) -> Tensor | None:
    """Fake labels for a conditional ``G`` (None for an unconditional one, drawing nothing):
    uniform over the classes, or in the proportion of ``counts`` (the training set's
    ``DataSpec.class_counts``) when given. Drawn on the CPU like the latents."""
    classes = num_classes(G)
    if not classes:
        return None
    if counts:
        weights = torch.tensor(counts, dtype=torch.float64)
        c = torch.multinomial(weights, n, replacement=True, generator=generator)
    else:
        c = torch.randint(classes, (n,), generator=generator)
    return to_device(c, torch.device(device))


def supports_truncation(G: nn.Module) -> bool:
    """Models with a mapping network take ``psi`` (the truncation trick); others do not."""
    return "psi" in inspect.signature(G.forward).parameters


def generate(G: nn.Module, z: Tensor, psi: float = 1.0, c: Tensor | None = None) -> Tensor:
    """G(z, c), truncated towards the average latent (of the class, where G is conditional)
    by ``psi`` where the model supports it."""
    if supports_truncation(G):
        return G(z, psi=psi) if c is None else G(z, c, psi=psi)
    if psi != 1.0:
        raise UserError("this model has no truncation trick (psi)",
                        "drop psi or use model=stylegan2")
    return G(z) if c is None else G(z, c)
