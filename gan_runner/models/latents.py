"""Latent-space figures: style mixing between seeds, interpolation paths through seeds, and
InfoGAN's code sweeps.

Every seed's z is drawn on the CPU from that seed alone (the same image on any machine), and
StyleGAN's noise inputs are held fixed (``noise_mode="const"``), so two images of a figure
differ only in the latent the figure is about. A class-conditional generator draws every image
of a figure in one class (``label``), whose average w its truncation pulls towards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn

from gan_runner.core.errors import UserError
from gan_runner.models.base import generate, latent_codes
from gan_runner.models.conditioning import LatentCodes

STYLE_RANGES = ("coarse", "middle", "fine")
PARALLEL_EPS = 1e-7  # below this sin(angle) two latents count as (anti)parallel: lerp instead


def latents_for_seeds(seeds: list[int], G: nn.Module | int) -> Tensor:
    """One latent per seed for ``G`` (or plain noise of that many dims), each drawn by the one
    sampler from its own CPU generator: a seed's latent does not depend on the other seeds
    asked for, or on the device."""
    codes = LatentCodes(G) if isinstance(G, int) else latent_codes(G)
    return torch.cat([codes.draw(1, torch.Generator().manual_seed(s)) for s in seeds])


def labels_for(label: int | None, n: int, device: torch.device | str = "cpu"
               ) -> Tensor | None:
    """``n`` copies of class ``label`` (None: an unconditional figure)."""
    return None if label is None else torch.full((n,), label, dtype=torch.int64, device=device)


def class_rows(z: Tensor, classes: list[int]) -> tuple[Tensor, Tensor]:
    """A class grid's inputs: the latents ``z`` (one per column) repeated in one row per class,
    and each image's class, so a column shows what the class changes about one latent."""
    labels = torch.tensor(classes, dtype=torch.int64, device=z.device)
    return z.repeat(len(classes), 1), labels.repeat_interleave(len(z))


def has_mapping(G: nn.Module) -> bool:
    """Style mixing and w-space paths need a separate mapping (z -> ws) and synthesis."""
    return all(isinstance(getattr(G, part, None), nn.Module) for part in ("mapping", "synthesis"))


def layer_resolution(index: int) -> int:
    """The side at which style ``index`` acts, counting two styles per resolution from 4x4
    (the convention behind StyleGAN's figures: styles 0-3 are the coarse ones)."""
    return 4 << (index // 2)


def style_layers(tokens: Iterable[int | str], num_ws: int) -> list[int]:
    """Layer indices and the named ranges of Karras et al. 2019 (coarse 4-8 px, middle
    16-32 px, fine 64 px and up) -> sorted layer indices. Below 64 px the last resolution
    counts as fine, so a 32 px model has all three ranges."""
    top = layer_resolution(num_ws - 1)
    fine_from = max(16, min(64, top))
    sides = {"coarse": (4, 8), "middle": (16, fine_from // 2), "fine": (fine_from, top)}
    layers: set[int] = set()
    for token in tokens:
        if isinstance(token, str):
            low, high = sides[token]
            named = {i for i in range(num_ws) if low <= layer_resolution(i) <= high}
            if not named:
                raise UserError(f"styles={token} names no layer of this {top}x{top} generator",
                                f"give layer indices in 0-{num_ws - 1}")
            layers |= named
        elif not 0 <= token < num_ws:
            raise UserError(f"styles has layer {token}, and this generator has {num_ws} styles",
                            f"give layer indices in 0-{num_ws - 1}")
        else:
            layers.add(token)
    return sorted(layers)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Points (T, D) from ``a`` to ``b`` at fractions ``t``: the direction turns along the
    great circle while the length changes linearly, so the path stays in the shell where
    Gaussian latents live instead of cutting through the atypical small-norm middle."""
    a64, b64, t64 = a.double(), b.double(), t.double()[:, None]
    norm_a, norm_b = a64.norm(), b64.norm()
    unit_a, unit_b = a64 / norm_a, b64 / norm_b
    angle = torch.arccos((unit_a @ unit_b).clamp(-1.0, 1.0))
    if torch.sin(angle) < PARALLEL_EPS:
        return lerp(a, b, t)
    direction = (torch.sin((1 - t64) * angle) * unit_a
                 + torch.sin(t64 * angle) * unit_b) / torch.sin(angle)
    return (torch.lerp(norm_a, norm_b, t64) * direction).to(a.dtype)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Points (T, *a.shape) on the segment; W is not Gaussian, so straight lines suit it."""
    weight = t.to(a)[(...,) + (None,) * a.dim()]
    return torch.lerp(a[None], b[None], weight)


def latent_path(points: Tensor, steps: int,
                interpolate: Callable[[Tensor, Tensor, Tensor], Tensor]) -> Tensor:
    """``steps`` points per leg from each point to the next, both ends included; a leg's last
    point is the next leg's first, so it appears once."""
    t = torch.linspace(0, 1, steps)
    legs = [interpolate(a, b, t)[:-1] for a, b in pairwise(points)]
    return torch.cat([*legs, points[-1:]])


def images_for_latents(G: nn.Module, z: Tensor, psi: float = 1.0,
                       cutoff: int | None = None, c: Tensor | None = None) -> Tensor:
    """G(z, c) with fixed noise where the model has noise inputs; ``cutoff`` needs a
    mapping."""
    if has_mapping(G):
        return G(z, c, psi=psi, cutoff=cutoff, noise_mode="const")
    if cutoff is not None:
        raise UserError("cutoff applies to the styles of a mapping network, and this model "
                        "has none", "drop cutoff=")
    return generate(G, z, psi, c)


def _device(G: nn.Module) -> torch.device:
    return next(G.parameters()).device


def _styles(G: nn.Module, seeds: list[int], psi: float, cutoff: int | None,
            label: int | None) -> Tensor:
    z = latents_for_seeds(seeds, G).to(_device(G))
    return G.mapping(z, labels_for(label, len(seeds), z.device), psi=psi, cutoff=cutoff)


def _synthesize(G: nn.Module, ws: Tensor) -> Tensor:
    return G.synthesis(ws, noise_mode="const")


@dataclass(frozen=True)
class MixingFigure:
    """The style-mixing figure: ``cells[i, j]`` is row seed i drawn with column seed j's
    styles at the mixed layers; ``rows`` and ``cols`` are the seeds' own images."""

    rows: Tensor  # (R, C, H, W)
    cols: Tensor  # (K, C, H, W)
    cells: Tensor  # (R, K, C, H, W)

    def tiles(self) -> Tensor:
        """Images in reading order for a (R + 1) x (K + 1) grid: the column seeds on top,
        the row seeds on the left, a black corner (the grid's padding colour)."""
        corner = torch.full_like(self.cols[:1], -1.0)
        body = torch.cat([self.rows[:, None], self.cells], dim=1).flatten(0, 1)
        return torch.cat([corner, self.cols, body])


def style_mixing(G: nn.Module, row_seeds: list[int], col_seeds: list[int], layers: list[int],
                 psi: float = 1.0, cutoff: int | None = None,
                 label: int | None = None) -> MixingFigure:
    """Each row seed's ws (truncated by ``psi`` up to ``cutoff``) with ``layers`` replaced by
    each column seed's: the rows keep their other styles, the columns lend these."""
    row_ws, col_ws = (_styles(G, seeds, psi, cutoff, label)
                      for seeds in (row_seeds, col_seeds))
    mixed = row_ws[:, None].repeat(1, len(col_seeds), 1, 1)
    mixed[:, :, layers] = col_ws[None, :, layers]
    cells = _synthesize(G, mixed.flatten(0, 1)).unflatten(0, mixed.shape[:2])
    return MixingFigure(_synthesize(G, row_ws), _synthesize(G, col_ws), cells)


def interpolation(G: nn.Module, seeds: list[int], steps: int, space: str = "z",
                  psi: float = 1.0, cutoff: int | None = None,
                  label: int | None = None) -> Tensor:
    """Images along the path through the seeds' latents: slerp between their z, or (``space``
    "w", models with a mapping network) lerp between their truncated ws."""
    if space == "w":
        return _synthesize(G, latent_path(_styles(G, seeds, psi, cutoff, label), steps, lerp))
    path = latent_path(latents_for_seeds(seeds, G), steps, slerp).to(_device(G))
    return images_for_latents(G, path, psi, cutoff, labels_for(label, len(path), path.device))


def code_values(codes: LatentCodes, code: int, steps: int, span: float) -> Tensor:
    """The values a sweep of ``code`` takes: every category of a categorical code (they come
    first), or ``steps`` evenly spaced values in [-span, span] of a continuous one."""
    if code < len(codes.categorical):
        return torch.arange(codes.categorical[code])
    return torch.linspace(-span, span, steps)


def code_sweep(G: nn.Module, seeds: list[int], code: int, steps: int = 8,
               span: float = 2.0) -> Tensor:
    """InfoGAN's figure: row i is seed i's latent with only ``code`` (numbered categorical
    codes first, then continuous) set to each of ``code_values`` in turn; images (rows x
    values, C, H, W) in reading order."""
    codes: LatentCodes = G.codes
    noise, indices, continuous = codes.split(latents_for_seeds(seeds, G))
    values = code_values(codes, code, steps, span)
    rows, cols = len(seeds), len(values)
    noise, continuous = noise.repeat_interleave(cols, 0), continuous.repeat_interleave(cols, 0)
    if indices is not None:
        indices = indices.repeat_interleave(cols, 0)
    swept = values.repeat(rows)
    if code < len(codes.categorical):
        indices[:, code] = swept  # type: ignore[index]
    else:
        continuous[:, code - len(codes.categorical)] = swept
    return images_for_latents(G, codes.join(noise, indices, continuous).to(_device(G)))
