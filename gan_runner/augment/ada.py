"""The augmentation pipe of StyleGAN2-ADA and the ``fixed`` and ``ada`` augmentations built on it.

Karras et al. 2020, "Training generative adversarial networks with limited data", appendix B.
Each op fires per sample with probability ``p * multiplier`` (the presets' multipliers are 1).
With p < 1 the augmented distribution is a mixture of the original one and its transforms,
from which the original can still be told apart, so D learns the real distribution and G does
not learn the augmentations ("non-leaking", sec. 2.2). The stages run in the reference's order:

1. Geometric: x-flip, 90-degree rotations, integer translation (the pixel blits), isotropic
   scaling, pre-rotation, anisotropic scaling, post-rotation, fractional translation. All are
   composed into one 3x3 matrix per sample and the image is resampled once as the reference
   does (``warp``): mirrored beyond its borders (about the edge pixels, so no empty border
   appears), upsampled 2x with the sym6 wavelet, sampled bilinearly, downsampled 2x with sym6.
   A sample whose matrix maps pixel centres onto pixel centres (only blits fired) is copied
   exactly from the mirrored image.
2. Color: brightness, contrast, luma flip, hue rotation, saturation, composed into one 4x4
   matrix per sample. Contrast scales around mid-grey 0, as in the reference, so that the op
   stays a per-pixel affine map. Outputs are not clamped: a clamp would cut G's gradient where it
   saturates and make the op non-invertible; the strengths bound the excursions instead. A
   1-channel image is treated as grey RGB (y, y, y), transformed and averaged back: the luma
   flip becomes negation, and hue rotation and saturation, which move colours around the grey
   axis, leave it unchanged.
3. Image-space filtering: four octave bands scaled by log-normal gains, renormalized so that
   the expected power of a 1/f spectrum is kept.
4. Additive Gaussian noise with a per-sample std |N(0, noise_std)|.
5. Cutout: a square of half the image side set to 0 (mid-grey).

The blits and the cutout box use the whole-pixel ops of ``core.image_ops``, shared with
DiffAugment and bCR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_runner.augment.base import AUGMENTS, AugmentConfig, DAugment
from gan_runner.augment.controller import AdaController
from gan_runner.core.checks import require, require_choice
from gan_runner.core.image_ops import cut_boxes, gather_pixels

GEOMETRIC_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
GROUPS: dict[str, tuple[str, ...]] = {
    "blit": GEOMETRIC_OPS[:3],
    "geom": GEOMETRIC_OPS[3:],
    "color": COLOR_OPS,
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
}
OPS = tuple(op for ops in GROUPS.values() for op in ops)
# The reference's presets: each group alone, and the cumulative chains, whose names are the
# initials of the groups they take in order (so len(name) is how many).
PRESETS: dict[str, dict[str, float]] = {
    **{name: dict.fromkeys(ops, 1.0) for name, ops in GROUPS.items()},
    **{name: dict.fromkeys((op for group in list(GROUPS)[:len(name)] for op in GROUPS[group]), 1.0)
       for name in ("bg", "bgc", "bgcf", "bgcfn", "bgcfnc")},
}
# pipe method -> the ops it carries out
_STAGES = (("_geometric", GEOMETRIC_OPS), ("_color", COLOR_OPS), ("_filter", ("imgfilter",)),
           ("_noise", ("noise",)), ("_cutout", ("cutout",)))
# Expected power of each filter band (low to high) for a 1/f spectrum, as in the reference.
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
# The low-pass decomposition filter of the sym6 wavelet (Daubechies' least asymmetric wavelet
# with 6 vanishing moments), which the reference resamples the geometric stage with.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036,
        -0.007800708325034148)
GEOMETRIC_FILTER = tuple(tap / math.fsum(SYM6) for tap in SYM6)  # unit DC gain


@dataclass(frozen=True)
class Magnitudes:
    """How strong each op is when it fires: the paper's defaults (appendix B)."""

    xint_max: float = 0.125  # integer translation, fraction of the side (rounded to pixels)
    scale_std: float = 0.2  # log2 of the isotropic scale
    rotate_max: float = 1.0  # fraction of a half turn: 1 = any angle
    aniso_std: float = 0.2  # log2 of the anisotropic scale
    xfrac_std: float = 0.125  # fractional translation, fraction of the side
    brightness_std: float = 0.2
    contrast_std: float = 0.5  # log2
    hue_max: float = 1.0  # fraction of a half turn around the grey axis
    saturation_std: float = 1.0  # log2
    imgfilter_std: float = 1.0  # log2 of each band's gain
    noise_std: float = 0.1
    cutout_size: float = 0.5  # side of the square, fraction of the image side


def _pick(prob: float, value: Tensor, identity: float) -> Tensor:
    """``value`` for the rows whose coin comes up with ``prob``, ``identity`` elsewhere."""
    fire = torch.rand(value.shape[0], device=value.device) < prob
    return torch.where(fire.view(-1, *[1] * (value.dim() - 1)), value, identity)


def _affine2d(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """Per-sample homogeneous matrices [[a, b, tx], [c, d, ty], [0, 0, 1]]."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=1).view(-1, 3, 3)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    zero = torch.zeros_like(sx)
    return _affine2d(sx, zero, zero, sy, zero, zero)


def _rotate2d(theta: Tensor) -> Tensor:
    cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
    return _affine2d(cos, -sin, sin, cos, zero, zero)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine2d(one, zero, zero, one, tx, ty)


def _filter_matrix(index: Tensor, taps: tuple[float, ...]) -> Tensor:
    """The float64 matrix of taps[index] (0 where index is outside the filter): a 1-D filter
    along an axis as a matrix product, which stays cheap to differentiate twice (R1
    differentiates D's input gradient through the pipe; convolutions were 11x slower so)."""
    bank = torch.tensor(taps, dtype=torch.float64, device=index.device)
    inside = (index >= 0) & (index < len(taps))
    return torch.where(inside, bank[index.clamp(0, len(taps) - 1)], 0.0)


def _mirrored_upsample_matrix(n: int, taps: tuple[float, ...], like: Tensor) -> Tensor:
    """Along an axis of n pixels: the mirror padding by n - 1 on each side, zero insertion and
    the low-pass with gain 2 (to keep the mean), as one (6n - 14, n) matrix in ``like``'s
    dtype. Of the padded axis' m = 3n - 2 pixels the low-pass makes u[q] = 2 sum_p pad[p]
    taps[q - 2p + 5] (12 taps), which the reference places at padded pixel q / 2, for
    q = 5 .. 2m - 6 only: the outputs that see nothing beyond the padding, so that nothing
    darkens them; they keep the centre. Folding the padding in makes the products act on the
    image itself: 1.7x faster through the double backward than padding first."""
    offset, m = len(taps) // 2 - 1, 3 * n - 2
    q = torch.arange(offset, 2 * m - offset, device=like.device).view(-1, 1)
    upsample = 2 * _filter_matrix(q - 2 * torch.arange(m, device=like.device) + offset, taps)
    source = (torch.arange(m, device=like.device) - (n - 1)).abs()  # F.pad's "reflect"
    source = torch.where(source > n - 1, 2 * (n - 1) - source, source)
    # a comparison, not F.one_hot, which checks the indices on the host (a sync)
    mirror = (source.view(-1, 1) == torch.arange(n, device=like.device)).to(torch.float64)
    return (upsample @ mirror).to(like.dtype)


def _mirrored_upsample2x(x: Tensor, taps: tuple[float, ...]) -> Tensor:
    return (_mirrored_upsample_matrix(x.shape[-2], taps, x) @ x
            @ _mirrored_upsample_matrix(x.shape[-1], taps, x).T)


def _downsample2x(v: Tensor, taps: tuple[float, ...]) -> Tensor:
    """The low-pass and every other pixel along both axes: d[s] = sum_k v[2s + 1 + k] taps[k],
    the adjoint of the upsampling up to its gain, so that for the orthogonal sym6 upsampling
    and then downsampling gives the image back."""
    def matrix(m: int) -> Tensor:
        s = torch.arange((m - len(taps)) // 2, device=v.device).view(-1, 1)
        return _filter_matrix(torch.arange(m, device=v.device) - 2 * s - 1, taps).to(v.dtype)

    return matrix(v.shape[-2]) @ v @ matrix(v.shape[-1]).T


def warp(x: Tensor, inverse: Tensor, taps: tuple[float, ...] = GEOMETRIC_FILTER) -> Tensor:
    """StyleGAN2-ADA's resampling: mirror the image, upsample it 2x with the wavelet low-pass,
    sample it bilinearly at the transformed points of a 2x output grid, low-pass and subsample
    that back to 1x. The 2x grid halves the blur of bilinear sampling, and the final low-pass
    removes what a shrinking transform would fold above the output's Nyquist frequency.

    Two deliberate differences, both outside the reference's usual regime: the mirror margin is
    fixed at the side - 1 pixels that the reference caps it at, since sizing it from the
    batch's matrices would read them on the host (a sync); and points beyond that margin
    (extreme shrinks and shifts) are mirrored again instead of reading zeros, so no black
    corner appears.
    """
    n, _, h, w = x.shape
    extra = len(taps) // 4  # output pixels made beyond each border for the low-pass (3)
    up = _mirrored_upsample2x(x, taps)  # centred where the image is
    # the 2x output grid's pixel centres in output pixel units about the image centre
    ys, xs = torch.meshgrid((torch.arange(2 * (h + 2 * extra), device=x.device) + 1) / 2
                            - (h / 2 + extra),
                            (torch.arange(2 * (w + 2 * extra), device=x.device) + 1) / 2
                            - (w / 2 + extra), indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, -1, 3)
    source = (points @ inverse.transpose(1, 2))[..., :2]
    # input units -> the upsampled image's pixel units about its centre -> grid_sample's [-1, 1]
    source = (2 * source - 0.5) / torch.tensor([up.shape[3] / 2, up.shape[2] / 2],
                                               device=x.device)
    grid = source.view(n, *xs.shape, 2).to(x.dtype)
    sampled = F.grid_sample(up, grid, mode="bilinear", padding_mode="reflection",
                            align_corners=False)
    return _downsample2x(sampled, taps)


def _resample(x: Tensor, inverse: Tensor, taps: tuple[float, ...] | None) -> Tensor:
    """Sample x at ``inverse`` @ each output pixel centre (pixel units, origin at the centre).

    A sample whose matrix maps pixel centres onto pixel centres (only blits fired, or nothing)
    is copied pixel by pixel from the mirrored image, exactly. The reference sends it through
    the filter chain too, which returns the same pixels up to float rounding for integer shifts
    (sym6 is orthogonal) but, sym6 being asymmetric, filters flips and quarter turns slightly
    (centre tap about 0.96): these are the paper's lossless blits. The others go through
    ``warp``; ``taps`` None says no sample can need it.
    """
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device) + 0.5 - h / 2,
                            torch.arange(w, device=x.device) + 0.5 - w / 2, indexing="ij")
    centres = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, h * w, 3)
    sx, sy = (centres @ inverse.transpose(1, 2)).unbind(dim=-1)[:2]
    index = torch.stack([sx + (w - 1) / 2, sy + (h - 1) / 2], dim=-1)
    pixel = index.round()
    cols, rows = pixel.long().view(n, h, w, 2).unbind(dim=-1)
    exact = gather_pixels(x, rows, cols, fill="reflect")
    if taps is None:
        return exact
    on_pixels = ((index - pixel).abs() < 1e-3).flatten(1).all(dim=1)
    return torch.where(on_pixels.view(n, 1, 1, 1), exact, warp(x, inverse, taps))


def _color_basis() -> Tensor:
    """4x4 building blocks of the colour ops: projections onto the grey axis v = (1,1,1)/sqrt(3)
    and its orthogonal complement, v's cross-product matrix, the homogeneous unit, the
    brightness offset."""
    v = torch.full((3,), 3 ** -0.5)
    basis = torch.zeros(5, 4, 4)
    basis[0, :3, :3] = torch.outer(v, v)
    basis[1, :3, :3] = torch.eye(3) - torch.outer(v, v)
    basis[2, :3, :3] = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    basis[3, 3, 3] = 1
    basis[4, :3, 3] = 1
    return basis


def band_filters(radius: int = 15) -> Tensor:
    """Four symmetric 1-D filters for the octaves [0, 1/16], [1/16, 1/8], [1/8, 1/4], [1/4, 1/2]
    cycles/sample (low first): differences of Hann-windowed sinc low-passes, so they sum to a
    unit impulse and unit gains leave the image as it is."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    window = 0.5 + 0.5 * torch.cos(math.pi * t / (radius + 1))

    def lowpass(cutoff: float) -> Tensor:
        taps = torch.sinc(2 * cutoff * t) * window
        return taps / taps.sum()

    cumulative = torch.stack([lowpass(1 / 16), lowpass(1 / 8), lowpass(1 / 4), (t == 0).double()])
    return torch.diff(cumulative, dim=0, prepend=torch.zeros(1, len(t))).float()


def _mirror_pad(x: Tensor, radius: int, dim: int) -> Tensor:
    """Pad ``dim`` by ``radius`` on both sides with the mirror image (edge pixel repeated, as
    grid_sample's reflection), for any radius."""
    size = x.shape[dim]
    index = torch.arange(-radius, size + radius, device=x.device) % (2 * size)
    return x.index_select(dim, torch.where(index >= size, 2 * size - 1 - index, index))


class AugmentPipe(nn.Module):
    """The differentiable ADA pipe; p is an argument so its owner decides where p comes from."""

    def __init__(self, ops: str | Mapping[str, float] = "bgc",
                 magnitudes: Magnitudes = Magnitudes()) -> None:
        super().__init__()
        self.ops = dict(PRESETS[ops] if isinstance(ops, str) else ops)
        unknown = set(self.ops) - set(OPS)
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}; known: {OPS}")
        self.magnitudes = magnitudes
        self.stages = [stage for stage, ops in _STAGES if any(self.ops.get(o, 0) > 0 for o in ops)]
        self.register_buffer("color_basis", _color_basis(), persistent=False)
        self.register_buffer("bands", band_filters(), persistent=False)
        self.register_buffer("band_power", torch.tensor(BAND_POWER), persistent=False)
        # with the blits alone every matrix maps pixel centres onto pixel centres
        self.warps = any(self.ops.get(op, 0) > 0 for op in GROUPS["geom"])

    def forward(self, images: Tensor, p: float) -> Tensor:
        """Augment (N, C, H, W) images in [-1, 1]; p = 0 returns ``images`` itself."""
        if p == 0:
            return images
        for stage in self.stages:
            images = getattr(self, stage)(images, p)
        return images

    def _prob(self, op: str, p: float) -> float:
        return self.ops.get(op, 0.0) * p

    def _geometric(self, x: Tensor, p: float) -> Tensor:
        n, _, h, w = x.shape
        m, dev = self.magnitudes, x.device

        def integers(high: int) -> Tensor:
            return torch.randint(0, high, (n,), device=dev, dtype=torch.float32)

        def angle() -> Tensor:
            return (torch.rand(n, device=dev) * 2 - 1) * math.pi * m.rotate_max

        # forward transform in pixel units around the image centre, the first op rightmost
        flip = _pick(self._prob("xflip", p), integers(2), 0.0)
        T = _scale2d(1 - 2 * flip, torch.ones_like(flip))
        T = _rotate2d(_pick(self._prob("rotate90", p), integers(4), 0.0) * (math.pi / 2)) @ T
        shift = _pick(self._prob("xint", p),
                      (torch.rand(n, 2, device=dev) * 2 - 1) * m.xint_max, 0.0)
        T = _translate2d((shift[:, 0] * w).round(), (shift[:, 1] * h).round()) @ T
        s = _pick(self._prob("scale", p), torch.exp2(torch.randn(n, device=dev) * m.scale_std),
                  1.0)
        T = _scale2d(s, s) @ T
        # pre- and post-rotation each fire with the probability that makes "any rotation" p
        p_rot = 1 - math.sqrt(max(1 - self._prob("rotate", p), 0.0))
        T = _rotate2d(_pick(p_rot, angle(), 0.0)) @ T
        a = _pick(self._prob("aniso", p), torch.exp2(torch.randn(n, device=dev) * m.aniso_std),
                  1.0)
        T = _scale2d(a, 1 / a) @ T
        T = _rotate2d(_pick(p_rot, angle(), 0.0)) @ T
        frac = _pick(self._prob("xfrac", p), torch.randn(n, 2, device=dev) * m.xfrac_std, 0.0)
        T = _translate2d(frac[:, 0] * w, frac[:, 1] * h) @ T
        inverse = torch.linalg.inv_ex(T).inverse  # _ex: no error check, no sync
        # a quarter turn of an image whose sides differ in parity lands between pixels
        warps = self.warps or (h - w) % 2 == 1
        return _resample(x, inverse, GEOMETRIC_FILTER if warps else None)

    def _color(self, x: Tensor, p: float) -> Tensor:
        n, c = x.shape[:2]
        if c not in (1, 3):
            raise ValueError(f"color augmentation needs 1 or 3 channels, got {c}")
        m, dev = self.magnitudes, x.device
        grey, chroma, cross, unit, offset = self.color_basis
        eye = torch.eye(4, device=dev)

        def per_sample(values: Tensor) -> Tensor:
            return values.view(n, 1, 1)

        b = _pick(self._prob("brightness", p), torch.randn(n, device=dev) * m.brightness_std, 0.0)
        M = eye + per_sample(b) * offset
        k = _pick(self._prob("contrast", p),
                  torch.exp2(torch.randn(n, device=dev) * m.contrast_std), 1.0)
        M = (unit + per_sample(k) * (eye - unit)) @ M
        flip = _pick(self._prob("lumaflip", p),
                     torch.randint(0, 2, (n,), device=dev, dtype=torch.float32), 0.0)
        M = (eye - 2 * per_sample(flip) * grey) @ M
        theta = _pick(self._prob("hue", p),
                      (torch.rand(n, device=dev) * 2 - 1) * math.pi * m.hue_max, 0.0)
        M = (grey + unit + per_sample(theta.cos()) * chroma + per_sample(theta.sin()) * cross) @ M
        s = _pick(self._prob("saturation", p),
                  torch.exp2(torch.randn(n, device=dev) * m.saturation_std), 1.0)
        M = (grey + unit + per_sample(s) * chroma) @ M
        M = M.to(x.dtype)
        if c == 3:
            return (M[:, :3, :3] @ x.flatten(2) + M[:, :3, 3:]).reshape(x.shape)
        gain = M[:, :3, :3].sum(dim=2).mean(dim=1)  # grey y -> (y, y, y) -> M -> channel mean
        return x * gain.view(n, 1, 1, 1) + M[:, :3, 3].mean(dim=1).view(n, 1, 1, 1)

    def _filter(self, x: Tensor, p: float) -> Tensor:
        n, c, h, w = x.shape
        bands = len(BAND_POWER)
        gains = _pick(self._prob("imgfilter", p), torch.exp2(
            torch.randn(n * bands, device=x.device) * self.magnitudes.imgfilter_std), 1.0)
        gains = gains.view(n, bands)
        # each band's gain renormalized as if alone (the others at 1), then all combined
        norms = torch.sqrt(1 + self.band_power * (gains.square() - 1))
        taps = (gains / norms.prod(dim=1, keepdim=True)) @ self.bands
        kernel = taps.repeat_interleave(c, dim=0).view(n * c, 1, 1, -1).to(x.dtype)
        radius = taps.shape[1] // 2
        y = x.reshape(1, n * c, h, w)
        y = F.conv2d(_mirror_pad(y, radius, dim=3), kernel, groups=n * c)
        y = F.conv2d(_mirror_pad(y, radius, dim=2), kernel.transpose(2, 3), groups=n * c)
        return y.view(n, c, h, w)

    def _noise(self, x: Tensor, p: float) -> Tensor:
        n = x.shape[0]
        sigma = _pick(self._prob("noise", p),
                      torch.randn(n, device=x.device).abs() * self.magnitudes.noise_std, 0.0)
        return x + torch.randn_like(x) * sigma.view(n, 1, 1, 1).to(x.dtype)

    def _cutout(self, x: Tensor, p: float) -> Tensor:
        n, _, h, w = x.shape
        dev = x.device
        size = _pick(self._prob("cutout", p),
                     torch.full((n, 1), self.magnitudes.cutout_size, device=dev), 0.0)
        centre = torch.rand(n, 2, device=dev)

        def inside(length: int, axis: int) -> Tensor:
            coords = (torch.arange(length, device=dev) + 0.5) / length
            return (coords - centre[:, axis:axis + 1]).abs() < size / 2

        return cut_boxes(x, inside(h, 1), inside(w, 0))

    def extra_repr(self) -> str:
        return f"ops={self.ops}"


class FixedAugment(DAugment):
    """The pipe at a constant p (the paper's fixed-p baselines)."""

    def __init__(self, pipe: AugmentPipe, p: float) -> None:
        super().__init__()
        self.pipe, self.p = pipe, p

    def forward(self, images: Tensor) -> Tensor:
        return self.pipe(images, self.p)

    def stats(self) -> dict[str, float]:
        return {"augment/p": self.p}


class AdaptiveAugment(DAugment):
    """The pipe at the p that the controller adapts from D's real logits."""

    def __init__(self, pipe: AugmentPipe, controller: AdaController) -> None:
        super().__init__()
        self.pipe, self.controller = pipe, controller

    def forward(self, images: Tensor) -> Tensor:
        return self.pipe(images, self.controller.p_value)

    def observe(self, real_logits: Tensor) -> None:
        self.controller.observe(real_logits)

    def stats(self) -> dict[str, float]:
        return self.controller.stats()


@dataclass
class PipeConfig(AugmentConfig):
    """Options shared by the pipe-based augmentations."""

    preset: str = "bgc"

    def __post_init__(self) -> None:
        require_choice("augment.preset", self.preset, tuple(PRESETS))


@dataclass
class FixedAugmentConfig(PipeConfig):
    """A constant p: the reference has no default (it asks for --p)."""

    name: str = "fixed"
    p: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.p <= 1, "augment.p", self.p,
                "a probability in [0, 1] (above about 0.8 augmentations leak into G)")


@dataclass
class AdaConfig(PipeConfig):
    """The r_t controller's settings; the defaults are the paper's."""

    name: str = "ada"
    target: float = 0.6  # r_t that p is steered towards
    interval: int = 4  # D steps between adjustments
    ada_kimg: float = 500.0  # thousands of real images for p to go from 0 to 1
    p_max: float = 0.8  # leaking sets in above about 0.8
    p_init: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 < self.target < 1, "augment.target", self.target, "an r_t target in (0, 1)")
        require(self.interval >= 1, "augment.interval", self.interval, "at least 1 D step")
        require(self.ada_kimg > 0, "augment.ada_kimg", self.ada_kimg, "a positive kimg")
        require(0 < self.p_max <= 1, "augment.p_max", self.p_max, "a probability in (0, 1]")
        require(0 <= self.p_init <= self.p_max, "augment.p_init", self.p_init,
                f"a probability in [0, augment.p_max={self.p_max}]")


@AUGMENTS.register("fixed", schema=FixedAugmentConfig)
def fixed_augment(cfg: FixedAugmentConfig, batch_size: int) -> DAugment:
    """The ADA pipe at a constant p."""
    return FixedAugment(AugmentPipe(cfg.preset), cfg.p)


@AUGMENTS.register("ada", schema=AdaConfig)
def ada_augment(cfg: AdaConfig, batch_size: int) -> DAugment:
    """The ADA pipe with p steered by the r_t heuristic."""
    controller = AdaController(batch_size, cfg.target, cfg.interval, cfg.ada_kimg, cfg.p_max,
                               cfg.p_init)
    return AdaptiveAugment(AugmentPipe(cfg.preset), controller)
