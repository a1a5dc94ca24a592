"""Class-conditional GANs and InfoGAN: the ``conditioning`` config group and the parts that
every model builds its conditional G and D from.

G learns p(x | c) when it is told the class c and D judges (x, c) pairs. G is told by
``concat`` (the label, one-hot or a learned embedding, joined to z: Mirza & Osindero 2014),
``cbn`` (conditional batch norm, a per-class gain and bias in every G norm layer: SNGAN,
BigGAN) or, in a model with a mapping network, the label's normalized embedding joined to the
normalized z at the mapping's input (StyleGAN2-ADA); ``auto`` is each model's own way (DCGAN:
cbn, StyleGAN2: its mapping, the MLP: concat). D is told by ``concat`` (the label as extra
input channels or features), ``projection`` (the inner product of a class embedding with D's
last features, added to the logit: Miyato & Koyama 2018) or not at all with ``acgan``, whose D
predicts the class with an auxiliary head (Odena et al. 2017; the objective weighs its
cross-entropy by ``acgan_weight``).

InfoGAN (Chen et al. 2016) needs no labels: G's latent is the noise followed by categorical
(one-hot) and continuous (uniform in [-1, 1]) codes, and a Q head on D's trunk recovers them;
the mutual-information term is weighted by ``info_weight``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gan_runner.core.checks import require, require_choice
from gan_runner.core.errors import UserError
from gan_runner.core.registry import Registry
from gan_runner.core.spec import DataSpec

G_WAYS = ("auto", "concat", "cbn")
D_WAYS = ("none", "concat", "projection", "acgan")
HINT_NO_LABELS = ("use a labelled dataset (fashion_mnist, mnist, cifar10, toy_*), "
                  "dataset.labels=folders for an image_folder of class subfolders, or "
                  "conditioning=infogan for unlabelled data")


@dataclass
class ConditioningConfig:
    """How G and D are told the class (``g``, ``d``), or InfoGAN's codes; ``none`` is neither."""

    name: str = "none"
    g: str = "auto"  # auto (the model's own way) | concat | cbn
    d: str = "none"  # none | concat | projection | acgan
    embed_dim: int = 0  # concat: a learned label embedding of this size; 0: a one-hot label
    acgan_weight: float = 1.0  # the auxiliary classifier's cross-entropy, for D and for G
    # D's classifier also learns the fakes' sampled labels (Odena et al.); false: real images
    # only, so that G cannot satisfy it with cues D learnt from fakes
    acgan_fakes: bool = True
    categorical: list[int] = field(default_factory=list)  # InfoGAN: each categorical code's size
    continuous: int = 0  # InfoGAN: how many continuous codes, uniform in [-1, 1]
    info_weight: float = 1.0  # InfoGAN: lambda of the mutual-information term

    def __post_init__(self) -> None:
        require_choice("conditioning.g", self.g, G_WAYS)
        require_choice("conditioning.d", self.d, D_WAYS)
        require(self.embed_dim >= 0, "conditioning.embed_dim", self.embed_dim,
                "a non-negative size (0: a one-hot label)")
        for key in ("acgan_weight", "info_weight"):
            value = getattr(self, key)
            require(value > 0, f"conditioning.{key}", value, "a positive weight")
        require(all(k >= 2 for k in self.categorical), "conditioning.categorical",
                list(self.categorical), "a list of code sizes of at least 2")
        require(self.continuous >= 0, "conditioning.continuous", self.continuous,
                "a non-negative count")
        require(self.labelled or self.g == "auto", "conditioning.g", self.g,
                "auto while D is not told the class (set conditioning.d too, e.g. "
                "conditioning=projection)")
        require(not (self.labelled and self.has_codes), "conditioning.d", self.d,
                "none with InfoGAN's codes (conditioning=infogan is for unlabelled data)")

    @property
    def labelled(self) -> bool:
        """Whether G and D are told the class (the data must carry labels)."""
        return self.d != "none"

    @property
    def has_codes(self) -> bool:
        return bool(self.categorical) or self.continuous > 0


CONDITIONINGS: Registry[str] = Registry("conditioning", group="conditioning")
for _name, _what in (("none", "unconditional"), ("concat", "labels joined to G's z and D's input"),
                     ("projection", "G's own way (cbn in DCGAN) and a projection D"),
                     ("acgan", "G's own way and an auxiliary classifier on D"),
                     ("infogan", "InfoGAN's latent codes and Q head")):
    CONDITIONINGS.register(_name, schema=ConditioningConfig)(_what)


@dataclass(frozen=True)
class Conditioning:
    """What one model builds for a run: the classes, G's and D's way of taking them, the
    embedding size, and InfoGAN's codes (empty without)."""

    num_classes: int = 0
    g: str = "none"  # none | concat | cbn
    d: str = "none"  # none | concat | projection | acgan
    embed_dim: int = 0
    categorical: tuple[int, ...] = ()
    continuous: int = 0

    @property
    def has_codes(self) -> bool:
        return bool(self.categorical) or self.continuous > 0

    @property
    def code_dim(self) -> int:
        return sum(self.categorical) + self.continuous


UNCONDITIONAL = Conditioning()


def one_hot(c: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Class indices (N,) as one-hot rows (N, num_classes), by a comparison: ``F.one_hot``
    reads the indices' range on the host (a sync in the training step on a CPU device)."""
    return (c[:, None] == torch.arange(num_classes, device=c.device)).to(dtype)


def resolve(cfg: ConditioningConfig | None, spec: DataSpec, model: str, *,
            g_ways: tuple[str, ...], d_ways: tuple[str, ...], codes: bool) -> Conditioning:
    """The conditioning ``model`` builds, or one line on what it cannot: ``g_ways`` are the
    ways its G takes a label (the first is its ``auto``), ``d_ways`` its D's, ``codes``
    whether it takes InfoGAN's codes."""
    if cfg is None or not (cfg.labelled or cfg.has_codes):
        return UNCONDITIONAL
    if cfg.has_codes:
        if not codes:
            raise UserError(f"model={model} does not take InfoGAN's codes (conditioning="
                            f"{cfg.name})", "use model=dcgan or model=mlp for InfoGAN")
        return Conditioning(categorical=tuple(cfg.categorical), continuous=cfg.continuous)
    if not spec.is_labelled:
        raise UserError(f"conditioning={cfg.name} needs class labels, and the data has none",
                        HINT_NO_LABELS)
    g = g_ways[0] if cfg.g == "auto" else cfg.g
    if g not in g_ways:
        raise UserError(f"model={model} cannot take the label in G by conditioning.g={g}",
                        f"use conditioning.g={'|'.join(('auto', *g_ways))}")
    if cfg.d not in d_ways:
        raise UserError(f"model={model} cannot take the label in D by conditioning.d={cfg.d}",
                        f"use conditioning.d={'|'.join(d_ways)}")
    return Conditioning(spec.num_classes, g, cfg.d, cfg.embed_dim)


def check_labels(needed: bool, c: Tensor | None, what: str) -> None:
    """A network told the class needs one per sample: a missing ``c`` is a bug in the
    caller, said plainly."""
    if needed and c is None:
        raise ValueError(f"this {what} is class-conditional: pass c, int64 class indices of "
                         "shape (N,)")


def check_generator_labels(num_classes: int, c: Tensor | None) -> None:
    """G's side of ``check_labels``: a label for an unconditional G would be ignored, so that
    is a bug too (D may be handed labels it does not read: acgan's)."""
    check_labels(num_classes > 0, c, "generator")
    if not num_classes and c is not None:
        raise ValueError("this generator is not class-conditional: pass c=None")


class LabelInput(nn.Module):
    """A class index as features: one-hot (``embed_dim`` 0) or a learned embedding."""

    def __init__(self, num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dim = embed_dim or num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if embed_dim else None

    def forward(self, c: Tensor) -> Tensor:
        if self.embed is None:
            return one_hot(c, self.num_classes)
        return self.embed(c)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine: each class has its gain and bias (initialized as
    DCGAN initializes batch norm: gains N(1, 0.02), biases 0)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.gain.weight, 1.0, 0.02)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return self.norm(x) * self.gain(c)[:, :, None, None] + self.bias(c)[:, :, None, None]


class CriticHeads(nn.Module):
    """The conditional parts on D's last features: the projection added to the logit, the
    acgan class head, InfoGAN's Q head. Only those the conditioning asks for exist, so an
    unconditional D has none of their weights. ``make_head(n)`` builds a head of ``n`` outputs
    on the features; ``features`` is their flattened size."""

    def __init__(self, cond: Conditioning, features: int,
                 make_head: Callable[[int], nn.Module],
                 wrap: Callable[[nn.Module], nn.Module] = lambda m: m) -> None:
        super().__init__()
        self.categorical, self.continuous = cond.categorical, cond.continuous
        self.projection = None
        if cond.d == "projection":
            embedding = nn.Embedding(cond.num_classes, features)
            nn.init.xavier_uniform_(embedding.weight)  # as SNGAN's: the logit starts near D's
            self.projection = wrap(embedding)
        self.classifier = make_head(cond.num_classes) if cond.d == "acgan" else None
        self.q = make_head(cond.code_dim) if cond.has_codes else None

    def forward(self, features: Tensor, logits: Tensor, c: Tensor | None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        outputs: dict[str, Tensor] = {}
        if self.projection is not None:
            logits = logits + (self.projection(c) * features.flatten(1)).sum(1)
        if self.classifier is not None:
            outputs["class_logits"] = self.classifier(features)
        if self.q is not None:
            q = self.q(features)
            split = sum(self.categorical)
            outputs["code_logits"], outputs["code_mean"] = q[:, :split], q[:, split:]
        return logits, outputs


@dataclass(frozen=True)
class LatentCodes:
    """How G's latent is laid out: ``noise`` standard-normal dims, then one one-hot block per
    categorical code (of ``categorical`` sizes), then ``continuous`` uniform [-1, 1] codes.
    Without codes the latent is the noise alone: a plain GAN's z."""

    noise: int
    categorical: tuple[int, ...] = ()
    continuous: int = 0

    @property
    def dim(self) -> int:
        return self.noise + sum(self.categorical) + self.continuous

    @property
    def count(self) -> int:
        """How many codes there are (each categorical code counts once)."""
        return len(self.categorical) + self.continuous

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Latents on the CPU, noise first: without codes exactly ``randn(n, noise)``, so a
        plain GAN draws what it always drew from the same generator."""
        noise = torch.randn(n, self.noise, generator=generator)
        if not (self.categorical or self.continuous):
            return noise
        indices = torch.stack([torch.randint(k, (n,), generator=generator)
                               for k in self.categorical], dim=1) if self.categorical else None
        continuous = torch.rand(n, self.continuous, generator=generator) * 2 - 1
        return self.join(noise, indices, continuous)

    def join(self, noise: Tensor, indices: Tensor | None, continuous: Tensor) -> Tensor:
        """The latent of given noise (N, noise), categorical values (N, len(categorical)) and
        continuous values (N, continuous)."""
        parts = [noise]
        if self.categorical:
            parts += [one_hot(indices[:, i], k, noise.dtype)  # type: ignore[index]
                      for i, k in enumerate(self.categorical)]
        return torch.cat([*parts, continuous.to(noise.dtype)], dim=1)

    def split(self, z: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """``join``'s inverse: the noise, the categorical values (as indices, None without
        categorical codes) and the continuous values; the Q head's targets."""
        noise, rest = z[:, :self.noise], z[:, self.noise:]
        indices = None
        if self.categorical:
            blocks = rest[:, :sum(self.categorical)].split(list(self.categorical), dim=1)
            indices = torch.stack([block.argmax(1) for block in blocks], dim=1)
        return noise, indices, rest[:, sum(self.categorical):]
