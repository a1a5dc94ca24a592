"""The ADA augmentation pipe: each op does what the paper specifies, p = 0 is the identity, the
pipe stays differentiable and non-leaking for p < 1."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_runner.augment.ada import (
    COLOR_OPS,
    GEOMETRIC_OPS,
    GROUPS,
    OPS,
    PRESETS,
    AugmentPipe,
    FixedAugment,
    band_filters,
)

SIDE = 64
_CENTRES = torch.arange(SIDE) + 0.5 - SIDE / 2
YS, XS = torch.meshgrid(_CENTRES, _CENTRES, indexing="ij")


def rgb(n: int = 8, side: int = 32, low: float = -1.0) -> torch.Tensor:
    """Random colour images with values in [low, 1]."""
    return low + (1 - low) * torch.rand(n, 3, side, side)


def blob(n: int, sigma_x: float = 4.0, sigma_y: float = 4.0) -> torch.Tensor:
    """n copies of a centred Gaussian blob on a SIDE x SIDE grey image."""
    image = torch.exp(-XS**2 / (2 * sigma_x**2) - YS**2 / (2 * sigma_y**2))
    return image.expand(n, 1, SIDE, SIDE).contiguous()


def moments(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Centroid (fractions of the side) and second moments (pixels^2) of each image."""
    w = images[:, 0].clamp_min(0)
    total = w.sum(dim=(1, 2))
    cx, cy = ((w * c).sum(dim=(1, 2)) / total for c in (XS, YS))
    dx, dy = XS - cx.view(-1, 1, 1), YS - cy.view(-1, 1, 1)
    return {"cx": cx / SIDE, "xx": (w * dx**2).sum(dim=(1, 2)) / total,
            "yy": (w * dy**2).sum(dim=(1, 2)) / total, "xy": (w * dx * dy).sum(dim=(1, 2)) / total}


def run(ops: str | dict[str, float], images: torch.Tensor, p: float = 1.0, seed: int = 0):
    torch.manual_seed(seed)
    return AugmentPipe(ops)(images, p)


# ------------------------------------------------------------------ presets and p = 0
def test_presets_are_the_groups_and_their_cumulative_chains():
    assert PRESETS["blit"] == {"xflip": 1.0, "rotate90": 1.0, "xint": 1.0}
    assert set(PRESETS["bg"]) == set(GEOMETRIC_OPS)
    assert set(PRESETS["bgc"]) == set(GEOMETRIC_OPS) | set(COLOR_OPS)
    assert set(PRESETS["bgcfnc"]) == set(OPS)
    assert len(OPS) == 15 and set(PRESETS) == set(GROUPS) | {"bg", "bgc", "bgcf", "bgcfn",
                                                           "bgcfnc"}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_p_zero_returns_the_very_input_tensor(preset):
    images = rgb()
    assert AugmentPipe(preset)(images, 0.0) is images
    assert FixedAugment(AugmentPipe(preset), 0.0)(images) is images


def test_samples_left_alone_at_small_p_are_bit_exact_copies():
    images = rgb(64)
    out = run("bgc", images, p=0.05)
    same = [torch.equal(a, b) for a, b in zip(out, images, strict=True)]
    assert 0 < sum(same) < len(same)


@pytest.mark.parametrize(("ops", "p", "rate"), [
    ({"brightness": 1.0}, 0.3, 0.3),
    ({"brightness": 0.5}, 0.6, 0.3),  # probability = p * multiplier
    ({"rotate": 1.0}, 0.4, 0.4),  # pre- or post-rotation: "any rotation" has probability p
    ({"xfrac": 1.0}, 0.7, 0.7),
    ({"cutout": 1.0}, 0.5, 0.5),
])
def test_each_op_fires_per_sample_with_probability_p_times_its_multiplier(ops, p, rate):
    images = rgb(4000, side=8, low=0.1)
    changed = (run(ops, images, p) != images).flatten(1).any(dim=1).float().mean()
    assert float(changed) == pytest.approx(rate, abs=5 * math.sqrt(rate * (1 - rate) / 4000))


# ------------------------------------------------------------------ pixel blitting
def test_xflip_draws_an_exact_mirror_image_or_none():
    """As in the reference, a firing x-flip draws flip/no flip uniformly: half are flipped."""
    images = rgb(64)
    out = run({"xflip": 1.0}, images)
    flipped = [torch.equal(o, x.flip(-1)) for o, x in zip(out, images, strict=True)]
    kept = [torch.equal(o, x) for o, x in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48


def test_rotate90_draws_an_exact_quarter_turn():
    images = rgb(64)
    out = run({"rotate90": 1.0}, images)
    turns = [[k for k in range(4) if torch.equal(o, torch.rot90(x, k, dims=(1, 2)))]
             for o, x in zip(out, images, strict=True)]
    assert all(len(t) == 1 for t in turns)
    assert {t[0] for t in turns} == {0, 1, 2, 3}


def mirror_shift(image: torch.Tensor, dx: int, dy: int, pad: int) -> torch.Tensor:
    """image moved by (dx, dy) whole pixels, the uncovered border mirrored about the edge
    pixels (which are not repeated), as the reference pads."""
    big = F.pad(image[None], [pad] * 4, mode="reflect")[0]
    h, w = image.shape[-2:]
    return big[..., pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def test_integer_translation_moves_whole_pixels_up_to_an_eighth_with_a_mirrored_border():
    images = rgb(32)
    out = run({"xint": 1.0}, images)
    reach = round(0.125 * 32)
    offsets = []
    for o, x in zip(out, images, strict=True):
        matches = [(dx, dy) for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)
                   if torch.equal(o, mirror_shift(x, dx, dy, reach))]
        assert len(matches) == 1
        offsets.append(matches[0])
    assert len(set(offsets)) > 10


# ------------------------------------------------------------------ general geometric
@pytest.mark.parametrize("ops", [{op: 1.0} for op in GEOMETRIC_OPS] + ["bg"])
def test_geometric_ops_leave_a_flat_image_flat_so_no_padded_border_appears(ops):
    """Mirroring, not zero padding: a zero border would darken a flat grey image's edges (the
    wavelet filter does overshoot on detail, as the reference's, so ranges are not kept)."""
    flat = torch.full((64, 3, 16, 16), 0.5)
    assert torch.allclose(run(ops, flat), flat, atol=1e-5)


@pytest.mark.parametrize(("op", "measure", "std"), [
    ("xfrac", lambda m, m0: m["cx"] - m0["cx"], 0.125),  # fraction of the side
    ("scale", lambda m, m0: 0.25 * torch.log2(m["xx"] * m["yy"] / (m0["xx"] * m0["yy"])), 0.2),
    ("aniso", lambda m, m0: 0.25 * torch.log2(m["xx"] / m["yy"]), 0.2),
])
def test_continuous_geometric_ops_draw_the_papers_strengths(op, measure, std):
    """log2 of the (an)isotropic scale has std 0.2; the fractional shift std is 1/8 side."""
    images = blob(512)
    drawn = measure(moments(run({op: 1.0}, images)), moments(images))
    assert float(drawn.mean()) == pytest.approx(0, abs=0.05)
    assert float(drawn.std()) == pytest.approx(std, rel=0.15)


def test_rotation_turns_about_the_centre_to_any_angle():
    round_blob = blob(8)
    assert torch.allclose(run({"rotate": 1.0}, round_blob), round_blob, atol=0.02)
    m = moments(run({"rotate": 1.0}, blob(512, sigma_x=8.0, sigma_y=2.0)))
    orientation = 0.5 * torch.atan2(2 * m["xy"], m["xx"] - m["yy"])  # in (-pi/2, pi/2]
    quarters = torch.histc(orientation, bins=4, min=-math.pi / 2, max=math.pi / 2) / 512
    assert torch.allclose(quarters, torch.full((4,), 0.25), atol=0.07)


def test_the_blits_are_non_leaking_below_p_one():
    """Augmenting with probability p < 1 keeps the original orientation the most likely one,
    at exactly the rate the mixture predicts; only p = 1 makes all 8 orientations equally
    likely, which would let G produce any of them (leak)."""
    image = torch.rand(1, 1, 6, 6)
    orientations = [torch.rot90(f, k, dims=(2, 3)) for f in (image, image.flip(-1))
                    for k in range(4)]
    n = 4000
    for p in (0.2, 0.5, 0.8, 1.0):
        out = run({"xflip": 1.0, "rotate90": 1.0}, image.expand(n, 1, 6, 6), p)
        counts = torch.stack([(out == o).flatten(1).all(dim=1) for o in orientations]).sum(1)
        assert int(counts.sum()) == n
        identity = (1 - p / 2) * (1 - 3 * p / 4)
        tolerance = 5 * math.sqrt(identity * (1 - identity) / n)
        assert float(counts[0]) / n == pytest.approx(identity, abs=tolerance)
        assert int(counts.argmax()) == 0 or p == 1.0
    assert torch.allclose(counts / n, torch.full((8,), 1 / 8), atol=0.03)


# ------------------------------------------------------------------ colour
def grey_and_chroma(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    luma = images.mean(dim=1, keepdim=True)
    return luma, images - luma


def test_brightness_adds_one_unclamped_constant_per_image_with_std_0_2():
    images = rgb(512, side=4, low=0.5)
    shift = run({"brightness": 1.0}, images) - images
    per_image = shift.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert float(per_image[:, 0].std()) == pytest.approx(0.2, rel=0.15)
    assert float((images + shift).max()) > 1  # not clamped: see the module docstring


def test_contrast_scales_around_mid_grey_by_a_log2_normal_factor_with_std_0_5():
    images = rgb(512, side=4, low=0.2)
    ratio = (run({"contrast": 1.0}, images) / images).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5)
    assert float(torch.log2(ratio[:, 0]).std()) == pytest.approx(0.5, rel=0.15)


def test_luma_flip_negates_the_grey_level_and_keeps_the_colour():
    images = rgb(64)
    luma, chroma = grey_and_chroma(images)
    out_luma, out_chroma = grey_and_chroma(run({"lumaflip": 1.0}, images))
    assert torch.allclose(out_chroma, chroma, atol=1e-5)
    flipped = torch.isclose(out_luma, -luma, atol=1e-5).flatten(1).all(dim=1)
    kept = torch.isclose(out_luma, luma, atol=1e-5).flatten(1).all(dim=1)
    assert bool((flipped | kept).all()) and 16 < int(flipped.sum()) < 48


def test_hue_rotation_keeps_luma_and_colourfulness_and_turns_the_colour():
    images = rgb(64)
    luma, chroma = grey_and_chroma(images)
    out_luma, out_chroma = grey_and_chroma(run({"hue": 1.0}, images))
    assert torch.allclose(out_luma, luma, atol=1e-5)
    assert torch.allclose(out_chroma.norm(dim=1), chroma.norm(dim=1), atol=1e-5)
    assert not torch.allclose(out_chroma, chroma, atol=1e-2)


def test_saturation_scales_the_colour_around_grey_by_a_log2_normal_factor_with_std_1():
    images = rgb(512, side=4)
    luma, chroma = grey_and_chroma(images)
    out_luma, out_chroma = grey_and_chroma(run({"saturation": 1.0}, images))
    assert torch.allclose(out_luma, luma, atol=1e-5)
    factor = (out_chroma * chroma).sum(dim=(1, 2, 3)) / chroma.square().sum(dim=(1, 2, 3))
    assert torch.allclose(out_chroma, factor.view(-1, 1, 1, 1) * chroma, atol=1e-5)
    assert float(torch.log2(factor).std()) == pytest.approx(1.0, rel=0.15)


def test_on_grey_images_luma_flip_negates_while_hue_and_saturation_do_nothing():
    grey = rgb(64)[:, :1]
    for op in ("hue", "saturation"):
        assert torch.allclose(run({op: 1.0}, grey), grey, atol=1e-5)
    out = run({"lumaflip": 1.0}, grey)
    signs = [1 if torch.allclose(o, x, atol=1e-5) else -1 if torch.allclose(o, -x, atol=1e-5)
             else 0 for o, x in zip(out, grey, strict=True)]
    assert 0 not in signs and set(signs) == {1, -1}


# ------------------------------------------------------------------ filter, noise, cutout
def test_filter_bands_split_the_spectrum_into_octaves_and_sum_to_an_impulse():
    bands = band_filters()
    radius = bands.shape[1] // 2
    impulse = torch.zeros(bands.shape[1])
    impulse[radius] = 1
    assert torch.allclose(bands.sum(dim=0), impulse, atol=1e-6)
    freqs = torch.linspace(0, 0.5, 201)
    taps = torch.arange(-radius, radius + 1).float()
    response = (bands[:, None, :] * torch.cos(2 * math.pi * freqs[:, None] * taps)).sum(-1)
    peaks = freqs[response.argmax(dim=1)]
    for peak, (low, high) in zip(peaks, [(0, 1 / 16), (1 / 16, 1 / 8), (1 / 8, 1 / 4),
                                         (1 / 4, 1 / 2)], strict=True):
        assert low <= float(peak) <= high


def test_filtering_reshapes_the_spectrum_without_border_artefacts():
    flat = torch.full((16, 3, 32, 32), 0.5)
    out = run({"imgfilter": 1.0}, flat)
    assert torch.allclose(out, out[:, :, :1, :1].expand_as(out), atol=1e-5)
    images = rgb(16)
    assert not torch.allclose(run({"imgfilter": 1.0}, images), images, atol=1e-2)


def test_noise_adds_gaussian_noise_with_a_half_normal_std_of_scale_0_1():
    images = rgb(256, side=16)
    per_image_std = (run({"noise": 1.0}, images) - images).flatten(1).std(dim=1)
    assert float(per_image_std.mean()) == pytest.approx(0.1 * math.sqrt(2 / math.pi), rel=0.15)


def test_cutout_sets_a_square_of_half_the_side_to_mid_grey():
    images = rgb(64, low=0.1)
    out = run({"cutout": 1.0}, images)
    cut = out == 0
    assert torch.equal(out[~cut], images[~cut])
    for mask in cut[:, 0]:
        rows, cols = mask.any(dim=1), mask.any(dim=0)
        assert int(mask.sum()) == int(rows.sum()) * int(cols.sum())  # one rectangle
        assert 8 <= int(rows.sum()) <= 16 and 8 <= int(cols.sum()) <= 16
    assert bool(cut[:, 0].flatten(1).sum(1).eq(256).any())  # whole 16 x 16 when inside


def test_cutout_keeps_its_draws_and_pixels_on_the_shared_box_op():
    """The cutout as written before it moved onto core.image_ops: a coin per sample, then a
    uniform centre; a pixel is kept when its centre is at least half a side away on an axis."""
    images = rgb(64, side=12)
    out = run({"cutout": 1.0}, images, p=0.6)
    torch.manual_seed(0)
    size = torch.where(torch.rand(64) < 0.6, 0.5, 0.0).view(64, 1)
    centre = torch.rand(64, 2)
    coords = (torch.arange(12) + 0.5) / 12
    keep = (((coords - centre[:, 1:]).abs() >= size / 2).unsqueeze(2)
            | ((coords - centre[:, :1]).abs() >= size / 2).unsqueeze(1))
    assert torch.equal(out, images * keep.unsqueeze(1).float())


# ------------------------------------------------------------------ the pipe as a whole
@pytest.mark.parametrize("channels", [1, 3])
def test_gradients_reach_every_input_image_through_the_full_pipe(channels):
    images = rgb(8)[:, :channels].requires_grad_()
    out = run("bgcfnc", images)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(images.grad).all()
    assert bool(images.grad.flatten(1).abs().sum(dim=1).gt(0).all())


def test_the_same_seed_gives_the_same_augmentation_from_two_pipes():
    images = rgb(8)
    assert torch.equal(run("bgcfnc", images, seed=3), run("bgcfnc", images, seed=3))
    assert not torch.equal(run("bgcfnc", images, seed=3), run("bgcfnc", images, seed=4))


def test_unknown_ops_are_rejected():
    with pytest.raises(ValueError, match="unknown augmentations"):
        AugmentPipe({"xflip": 1.0, "sharpen": 1.0})
