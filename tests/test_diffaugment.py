"""DiffAugment: the paper's three op groups, applied to every image every time."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan_runner.augment.base import AUGMENTS
from gan_runner.augment.diffaugment import (
    DiffAugment,
    DiffAugmentConfig,
    brightness,
    contrast,
    cutout,
    saturation,
    translation,
)
from gan_runner.core.errors import UserError


def rgb(n: int = 16, side: int = 32, low: float = -1.0) -> torch.Tensor:
    return low + (1 - low) * torch.rand(n, 3, side, side)


def run(policy: str, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return DiffAugment(policy)(images)


def per_image(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1)


def test_brightness_adds_one_uniform_offset_in_plus_minus_half_per_image():
    images = rgb(256, side=4)
    offset = per_image(brightness(images) - images)
    assert torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-6)
    assert float(offset.min()) >= -0.5 and float(offset.max()) <= 0.5
    assert float(offset[:, 0].std()) == pytest.approx(1 / 12**0.5, rel=0.15)


def test_saturation_scales_colour_around_each_pixels_grey_by_up_to_two():
    images = rgb(256, side=4)
    grey = images.mean(dim=1, keepdim=True)
    out = saturation(images)
    assert torch.allclose(out.mean(dim=1, keepdim=True), grey, atol=1e-6)
    chroma, out_chroma = images - grey, out - grey
    factor = (out_chroma * chroma).sum(dim=(1, 2, 3)) / chroma.square().sum(dim=(1, 2, 3))
    assert torch.allclose(out_chroma, factor.view(-1, 1, 1, 1) * chroma, atol=1e-5)
    assert float(factor.min()) >= 0 and float(factor.max()) <= 2
    assert torch.equal(saturation(images[:, :1]), images[:, :1])  # grey: nothing to scale


def test_contrast_scales_around_the_image_mean_by_a_factor_in_half_to_one_and_a_half():
    images = rgb(256, side=4)
    out = contrast(images)
    mean, out_mean = (per_image(x).mean(dim=1, keepdim=True) for x in (images, out))
    assert torch.allclose(out_mean, mean, atol=1e-6)
    # one factor per image, fitted by least squares (a pixel-wise ratio blows up near the mean)
    centred, out_centred = per_image(images) - mean, per_image(out) - out_mean
    factor = (out_centred * centred).sum(dim=1) / centred.square().sum(dim=1)
    assert torch.allclose(out_centred, factor[:, None] * centred, atol=1e-5)
    assert float(factor.min()) >= 0.5 and float(factor.max()) <= 1.5


def zero_shift(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """image moved by (dx, dy) pixels, the uncovered border zero."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_translation_moves_by_whole_pixels_up_to_an_eighth_and_fills_zeros():
    images = rgb(32)
    out = run("translation", images)
    shifts = []
    for o, x in zip(out, images, strict=True):
        matches = [(dx, dy) for dx in range(-4, 5) for dy in range(-4, 5)
                   if torch.equal(o, zero_shift(x, dx, dy))]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 10


def test_cutout_zeroes_one_square_of_half_the_side_which_may_overhang_the_border():
    images = rgb(64, low=0.1)
    out = run("cutout", images)
    hole = out == 0
    assert torch.equal(out[~hole], images[~hole])
    assert torch.equal(hole, hole[:, :1].expand_as(hole))  # the same hole in every channel
    sizes = []
    for mask in hole[:, 0]:
        rows, cols = int(mask.any(dim=1).sum()), int(mask.any(dim=0).sum())
        assert int(mask.sum()) == rows * cols and 8 <= rows <= 16 and 8 <= cols <= 16
        sizes.append((rows, cols))
    assert (16, 16) in sizes and any(s != (16, 16) for s in sizes)


def test_every_image_is_augmented_every_time_with_no_probability():
    images = rgb(64)
    out = run("color,translation,cutout", images)
    assert bool((out != images).flatten(1).any(dim=1).all())
    assert not torch.equal(out, run("color,translation,cutout", images, seed=1))
    assert DiffAugment().stats() == {}


def test_the_policy_chooses_the_ops_and_their_order():
    images = rgb()
    assert torch.equal(run("", images), images)
    torch.manual_seed(0)
    in_order = contrast(saturation(brightness(images)))
    assert torch.equal(run("color", images), in_order)
    assert not torch.equal(run("translation,cutout", images), run("cutout,translation", images))
    with pytest.raises(ValueError, match="unknown DiffAugment ops"):
        DiffAugment("color,rotate")


@pytest.mark.parametrize("channels", [1, 3])
def test_gradients_reach_every_input_image(channels):
    images = rgb(8)[:, :channels].requires_grad_()
    out = run("color,translation,cutout", images)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(images.grad).all()
    assert bool(images.grad.flatten(1).abs().sum(dim=1).gt(0).all())


def test_the_same_seed_gives_the_same_augmentation():
    images = rgb()
    assert torch.equal(run("color,translation,cutout", images, seed=5),
                       run("color,translation,cutout", images, seed=5))


def test_the_registered_factory_builds_the_configured_policy_and_rejects_unknown_ops():
    built = AUGMENTS.get("diffaugment")(DiffAugmentConfig(policy="translation, cutout"), 64)
    assert isinstance(built, DiffAugment) and built.policy == ("translation", "cutout")
    with pytest.raises(UserError, match=r"augment\.policy"):
        DiffAugmentConfig(policy="color,flip")


def translation_before_the_shared_ops(x: torch.Tensor) -> torch.Tensor:
    """The translation as it was written before it moved to core.image_ops (same draws): read
    from the zero-padded image."""
    n, _, h, w = x.shape
    ry, rx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
    dy = torch.randint(-ry, ry + 1, (n, 1, 1))
    dx = torch.randint(-rx, rx + 1, (n, 1, 1))
    rows = torch.arange(h).view(1, h, 1) - dy + ry
    cols = torch.arange(w).view(1, 1, w) - dx + rx
    padded = F.pad(x, [rx, rx, ry, ry]).permute(0, 2, 3, 1)
    return padded[torch.arange(n).view(n, 1, 1), rows, cols].permute(0, 3, 1, 2)


def cutout_before_the_shared_ops(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape

    def inside(side: int) -> torch.Tensor:
        size = int(side * 0.5 + 0.5)
        start = torch.randint(0, side + 1 - size % 2, (n, 1)) - size // 2
        coords = torch.arange(side).view(1, side)
        return (coords >= start) & (coords < start + size)

    hole = inside(h).unsqueeze(2) & inside(w).unsqueeze(1)
    return x * (~hole).unsqueeze(1).to(x.dtype)


@pytest.mark.parametrize(("channels", "side"), [(3, 32), (1, 28), (3, 9)])
def test_outputs_and_gradients_are_bit_identical_to_the_code_before_the_shared_ops(channels,
                                                                                    side):
    """Moving translation and cutout onto core.image_ops changed no draw and no bit, in the
    images or in the gradients that reach them (whose memory layout decides rounding
    upstream)."""
    torch.manual_seed(1)
    images = torch.randn(16, channels, side, side)
    weights = torch.randn(16, channels, side, side)

    def augmented(ops) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.clone().requires_grad_()
        torch.manual_seed(7)
        y = x
        for op in ops:
            y = op(y)
        (y * weights).sum().backward()
        return y.detach(), x.grad

    new = augmented([brightness, saturation, contrast, translation, cutout])
    old = augmented([brightness, saturation, contrast, translation_before_the_shared_ops,
                     cutout_before_the_shared_ops])
    assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])
    torch.manual_seed(7)
    assert torch.equal(run("color,translation,cutout", images, seed=7), new[0])
