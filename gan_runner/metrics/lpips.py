"""LPIPS (Zhang et al. 2018), the learned perceptual distance, and the metrics built on it:
StyleGAN's perceptual path length (PPL) and the diversity of fakes.

LPIPS compares two images through an ImageNet network: at five layers it unit-normalizes each
pixel's channel vector, squares the difference, weighs the channels with the calibrated
linear layer (1x1 convolutions fitted to human judgements, "v0.1") and averages over space;
the sum over layers is the distance. The backbones are torchvision's AlexNet and VGG-16 (the
architectures from torchvision, the ImageNet weights from ``metrics.weights.alexnet`` /
``vgg16``, the cache or torchvision's URL), the linear layers the lpips package's v0.1 files
(``metrics.weights.lpips_alex`` / ``lpips_vgg``, or their GitHub URL); every file's sha256 is
checked. Inputs are images in [-1, 1], as the lpips package takes them.

PPL (Karras et al. 2019, StyleGAN; 2020, StyleGAN2): the mean of LPIPS(G(t), G(t + eps)) /
eps^2 between two latents' interpolation points, t uniform (``full``) or 0 (``end``), the
latents interpolated in Z (slerp) or W (lerp), with epsilon 1e-4, the faces' centre crop
(``metrics.ppl_crop``; StyleGAN2's ``ppl2_*`` do not crop), images above 256 px average-pooled
to 256, and the distances outside the 1st-99th percentiles dropped. Noise inputs are the
generator's constant ones, so only the latent moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from gan_runner.core.errors import UserError
from gan_runner.data.datasets import to_uint8
from gan_runner.metrics.base import MetricContext, Outputs, Result, register_metric
from gan_runner.metrics.features.weights import load_state_dict, locate_weights
from gan_runner.metrics.stats import ALONE, Shard
from gan_runner.models.base import generate, sample_latents

# the lpips package's input shift and scale: [-1, 1] images onto ImageNet's statistics
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


@dataclass(frozen=True)
class Backbone:
    """A torchvision network cut after the five ReLUs LPIPS reads."""

    build: str  # torchvision.models constructor
    cuts: tuple[int, ...]  # end index (exclusive) of each slice of ``.features``
    channels: tuple[int, ...]
    url: str
    sha256: str
    linear_url: str
    linear_sha256: str


_LPIPS_WEIGHTS = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/"
BACKBONES = {
    "alex": Backbone(
        "alexnet", (2, 5, 8, 10, 12), (64, 192, 384, 256, 256),
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        _LPIPS_WEIGHTS + "alex.pth",
        "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
    "vgg": Backbone(
        "vgg16", (4, 9, 16, 23, 30), (64, 128, 256, 512, 512),
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        _LPIPS_WEIGHTS + "vgg.pth",
        "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
}
# metrics.weights keys of each net's backbone and linear-layer files
WEIGHT_KEYS = {"alex": ("alexnet", "lpips_alex"), "vgg": ("vgg16", "lpips_vgg")}


class LPIPS(nn.Module):
    """``LPIPS(net, backbone_state, linear_state)(x0, x1)`` -> (N,) distances of [-1, 1]
    images; ``sha256`` names both weight files, for the provenance."""

    def __init__(self, net: str, backbone_state: Mapping[str, Tensor],
                 linear_state: Mapping[str, Tensor], sha256: str = "") -> None:
        super().__init__()
        spec = BACKBONES[net]
        trunk = getattr(torchvision.models, spec.build)(weights=None)
        trunk.load_state_dict(backbone_state)
        starts = (0, *spec.cuts[:-1])
        self.slices = nn.ModuleList(trunk.features[a:b] for a, b in zip(starts, spec.cuts,
                                                                        strict=True))
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in spec.channels)
        for i, lin in enumerate(self.lins):  # the package's names: lin{i}.model.1.weight
            lin.weight.data.copy_(linear_state[f"lin{i}.model.1.weight"])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.net, self.sha256 = net, sha256
        self.requires_grad_(False).eval()

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        h = (torch.cat([x0, x1]).expand(-1, 3, -1, -1) - self.shift) / self.scale
        total = h.new_zeros(len(x0))
        for layer, lin in zip(self.slices, self.lins, strict=True):
            h = layer(h)
            f0, f1 = (h / (h.square().sum(1, keepdim=True).sqrt() + 1e-10)).chunk(2)
            total = total + lin((f0 - f1).square()).mean((1, 2, 3))
        return total


def build_lpips(net: str, weights: Mapping[str, str], cache_dir: str | None) -> LPIPS:
    """The calibrated LPIPS network ``net`` (alex | vgg) from its two verified files."""
    spec = BACKBONES[net]
    backbone_key, linear_key = WEIGHT_KEYS[net]
    hint = (f"pass metrics.weights.{backbone_key}=PATH (torchvision's {spec.build} ImageNet "
            f"file) and metrics.weights.{linear_key}=PATH (the lpips package's "
            f"weights/v0.1/{spec.linear_url.rsplit('/', 1)[-1]})")
    backbone, backbone_sha = locate_weights(weights.get(backbone_key), cache_dir, spec.url,
                                            spec.sha256, f"metrics.weights.{backbone_key}",
                                            hint)
    linear, linear_sha = locate_weights(weights.get(linear_key), cache_dir, spec.linear_url,
                                        spec.linear_sha256, f"metrics.weights.{linear_key}",
                                        hint)
    try:
        return LPIPS(net, load_state_dict(backbone, f"{spec.build} weights", hint),
                     load_state_dict(linear, "LPIPS linear weights", hint),
                     f"{backbone_sha[:16]}+{linear_sha[:16]}")
    except (RuntimeError, KeyError) as error:
        raise UserError(f"the LPIPS-{net} weights do not fit: {error}", hint) from error


def _lpips(context: MetricContext) -> LPIPS:
    cfg = context.cfg
    network = context.from_real(f"lpips_{cfg.lpips_net}", lambda: build_lpips(
        cfg.lpips_net, cfg.weights, cfg.cache_dir).to(context.device))
    context.note(lpips=f"{cfg.lpips_net} v0.1", lpips_sha256=network.sha256)
    return network


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the directions of ``a`` and ``b`` (StyleGAN's, for Z)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def ppl_view(images: Tensor, crop: bool) -> Tensor:
    """StyleGAN's view of a sample for PPL: the centre crop (rows 3/8-7/8, columns 2/8-6/8),
    then average pooling down to at most 256 px."""
    if crop:
        c = images.shape[2] // 8
        images = images[:, :, c * 3:c * 7, c * 2:c * 6]
    factor = images.shape[2] // 256
    if factor > 1:
        images = F.avg_pool2d(images, factor)
    return images


def gathered(parts: list[tuple[int, np.ndarray]], shard: Shard) -> np.ndarray:
    """This rank's (batch index, values) joined with the other ranks', in batch order."""
    everyone = shard.all_gather(parts) if shard.size > 1 else [parts]
    return np.concatenate([values for _, values in sorted(
        (part for rank in everyone for part in rank), key=lambda part: part[0])])


def path_lengths(G: nn.Module, lpips: LPIPS, count: int, space: str, sampling: str,
                 epsilon: float, crop: bool, batch_size: int, seed: int, psi: float,
                 device: torch.device, shard: Shard = ALONE) -> np.ndarray:
    """``count`` scaled LPIPS steps d = LPIPS(x(t), x(t + eps)) / eps^2; under a shard each
    rank computes every size-th batch (all ranks draw all latents, so batches are the same)."""
    mapped = hasattr(G, "mapping") and hasattr(G, "synthesis")
    if space == "w" and not mapped:
        raise UserError("PPL in W needs a generator with a mapping network",
                        "use ppl_zfull / ppl_zend, or model=stylegan2")
    generator = torch.Generator().manual_seed(seed)
    out = []
    for index, start in enumerate(range(0, count, batch_size)):
        n = min(batch_size, count - start)
        t = torch.rand(n, 1, generator=generator) * (1.0 if sampling == "full" else 0.0)
        z = sample_latents(G, 2 * n, generator)
        if not shard.owns(index):
            continue
        z0, z1, t = z[:n].to(device), z[n:].to(device), t.to(device)
        with torch.no_grad():
            if space == "z":
                pair = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
                images = (G.synthesis(G.mapping(pair, psi=psi), noise_mode="const") if mapped
                          else generate(G, pair, psi))
            else:
                w0, w1 = G.mapping(torch.cat([z0, z1]), psi=psi).chunk(2)
                tw = t.view(n, 1, 1)
                pair = torch.cat([torch.lerp(w0, w1, tw), torch.lerp(w0, w1, tw + epsilon)])
                images = G.synthesis(pair, noise_mode="const")
            a, b = ppl_view(images.float(), crop).chunk(2)
            out.append((index, (lpips(a, b) / epsilon**2).double().cpu().numpy()))
    return gathered(out, shard)


def filtered_mean(distances: np.ndarray) -> float:
    """The mean without the outliers: values between the 1st and 99th percentiles, these
    taken as data points (numpy's ``lower`` / ``higher``), as StyleGAN does."""
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return float(distances[(distances >= lo) & (distances <= hi)].mean())


def _register_ppl(space: str, sampling: str) -> None:
    key = f"ppl_{space}{sampling}"

    def compute(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
        cfg = context.cfg
        distances = path_lengths(context.G, _lpips(context), cfg.ppl_samples, space, sampling,
                                 cfg.ppl_epsilon, cfg.ppl_crop, cfg.batch_size, cfg.seed,
                                 context.psi, context.device, context.shard or ALONE)
        context.note(ppl_samples=cfg.ppl_samples, ppl_epsilon=cfg.ppl_epsilon,
                     ppl_crop=cfg.ppl_crop)
        return {key: filtered_mean(distances)}

    compute.__doc__ = f"PPL with {space.upper()} interpolation, t {sampling}."
    register_metric(key, Result(key, lower_is_better=True, label=f"PPL ({space}, {sampling})"),
                    needs=("generator",), order=6)(compute)


for _space in ("z", "w"):
    for _sampling in ("full", "end"):
        _register_ppl(_space, _sampling)


@register_metric("diversity", Result("lpips_diversity", lower_is_better=False,
                                     label="LPIPS diversity"), needs=("generator",), order=7)
def diversity_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    """Mean LPIPS between pairs of independent fakes (quantized like a saved picture): low when
    the generator repeats itself, as in MSGAN's and DRIT's diversity score."""
    cfg, G = context.cfg, context.G
    lpips = _lpips(context)
    shard = context.shard or ALONE
    generator = torch.Generator().manual_seed(cfg.seed + 1)  # not the FID fakes' latents
    parts = []
    for index, start in enumerate(range(0, cfg.diversity_pairs, cfg.batch_size)):
        n = min(cfg.batch_size, cfg.diversity_pairs - start)
        z = sample_latents(G, 2 * n, generator)
        if not shard.owns(index):
            continue
        with torch.no_grad():
            images = to_uint8(generate(G, z.to(context.device), context.psi)).float()
            distances = lpips(*(images / 127.5 - 1).chunk(2))
        parts.append((index, distances.double().cpu().numpy()))
    context.note(diversity_pairs=cfg.diversity_pairs)
    return {"lpips_diversity": float(gathered(parts, shard).mean())}
