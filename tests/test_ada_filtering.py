"""ADA's geometric resampling is StyleGAN2-ADA's: mirror, 2x upsampling with the sym6 wavelet,
bilinear sampling, 2x downsampling with sym6.

The reference for the numbers is a direct evaluation in float64 of the same linear operator,
written from its definition with none of the implementation's steps (no padding, no
convolution, no grid_sample, no normalized coordinates): the input extended by reflection to
the whole plane, the upsampled image as a sum over input pixels, bilinear weights by hand, the
downsampling as a sum over the 12 x 12 taps. Its conventions (upsampled pixel q at input pixel
q / 2, output pixel s at the centre of taps 2s + 1 .. 2s + 12 of the 2x output grid) are the
reference code's; the implementation was also checked once against that code (NVlabs'
training/augment.py run on the CPU): at most 1.5e-5 apart on white noise in [-1, 1].

Tolerance 5e-5: the implementation runs in float32, where a sample point 60 upsampled pixels
from the centre is known to about 4e-6 pixels, which moves a white-noise value by about 1e-5,
plus rounding in the 6 + 12 tap sums; a wrong offset, tap order or mirror is off by 0.1 or more.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan_runner.augment import ada
from gan_runner.augment.ada import GEOMETRIC_FILTER, SYM6, AugmentPipe, warp

TOLERANCE = 5e-5
SIDE = 24
H = np.asarray(SYM6) / math.fsum(SYM6)


def reflect(index: np.ndarray, size: int) -> np.ndarray:
    """The mirror about the border pixels' centres, repeated over the whole line."""
    index = np.mod(index, 2 * (size - 1))
    return np.where(index >= size, 2 * (size - 1) - index, index)


def upsampling_rows(q: np.ndarray, size: int) -> np.ndarray:
    """(len(q), size): the weight of each input pixel in upsampled pixels q, with the mirror
    folded in: u[q] = 2 sum over all integer p of x[reflect(p)] h[q - 2p + 5]."""
    rows = np.zeros((len(q), size))
    for k in range(len(H)):  # q - 2p + 5 = k
        twice_p = q + 5 - k
        even = twice_p % 2 == 0
        np.add.at(rows, (np.nonzero(even)[0], reflect(twice_p[even] // 2, size)), 2 * H[k])
    return rows


def dense_warp(image: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """The operator on one (C, S, S) image for one 3x3 inverse matrix, in float64."""
    _, size, _ = image.shape
    extra = len(H) // 4
    grid = 2 * (size + 2 * extra)
    # 2x output grid: pixel i at (i + 1) / 2 - (size / 2 + extra) output pixels from the centre
    coords = (np.arange(grid) + 1) / 2 - (size / 2 + extra)
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    source = np.einsum("ij,jyx->iyx", inverse, np.stack([xs, ys, np.ones_like(xs)]))[:2]
    # input pixel p sits at p + 1/2 - size/2 about the centre and at upsampled pixel 2p
    q_x, q_y = 2 * source + size - 1
    qx0, qy0 = np.floor(q_x).astype(int), np.floor(q_y).astype(int)
    fx, fy = q_x - qx0, q_y - qy0
    low = min(qx0.min(), qy0.min())
    span = np.arange(low, max(qx0.max(), qy0.max()) + 2)
    rows = upsampling_rows(span, size)
    up = np.einsum("qp,cpr,sr->cqs", rows, image, rows)  # u over every q the points touch
    sampled = sum(wy * wx * up[:, qy0 - low + dy, qx0 - low + dx]
                  for dy, wy in ((0, 1 - fy), (1, fy)) for dx, wx in ((0, 1 - fx), (1, fx)))
    out = np.zeros(image.shape)
    for ky in range(len(H)):
        for kx in range(len(H)):
            out += H[ky] * H[kx] * sampled[:, 1 + ky:1 + ky + 2 * size:2,
                                           1 + kx:1 + kx + 2 * size:2]
    return out


def rotation(degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    return np.array([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0],
                     [0.0, 0.0, 1.0]])


def scaling(factor: float) -> np.ndarray:
    """The inverse matrix of an isotropic scaling by ``factor`` (< 1 shrinks)."""
    return np.diag([1 / factor, 1 / factor, 1.0])


def sample_images() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    centres = torch.arange(SIDE) + 0.5 - SIDE / 2
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    smooth = torch.stack([torch.exp(-((xs - 3) ** 2 + (ys + 2) ** 2) / 40),
                          torch.cos(2 * math.pi * (xs + 2 * ys) / SIDE)]) * 2 - 1
    return {"white noise": torch.rand(2, SIDE, SIDE) * 2 - 1, "smooth": smooth}


INVERSES = {
    "rotate 30": rotation(30),
    "rotate 45": rotation(45),
    "shrink 0.75": scaling(0.75),
    "enlarge 1.3": scaling(1.3),
    "rotate 60 and shrink 0.85, shifted": scaling(0.85) @ rotation(60)
    @ np.array([[1, 0, 1.7], [0, 1, -2.4], [0, 0, 1.0]]),
}


@pytest.mark.parametrize("transform", list(INVERSES))
@pytest.mark.parametrize("kind", ["white noise", "smooth"])
def test_the_geometric_stage_computes_the_references_filtered_resampling(kind, transform):
    image = sample_images()[kind]
    inverse = INVERSES[transform]
    expected = dense_warp(image.double().numpy(), inverse)
    out = warp(image[None], torch.tensor(inverse, dtype=torch.float32)[None])[0]
    assert np.abs(out.double().numpy() - expected).max() < TOLERANCE


def stripes(frequency: float, side: int = 32) -> torch.Tensor:
    """Vertical stripes of ``frequency`` cycles per pixel (std 0.71)."""
    return torch.cos(2 * math.pi * frequency * torch.arange(side)).expand(1, 1, side, side)


def centre(images: torch.Tensor) -> torch.Tensor:
    side = images.shape[-1]
    return images[..., side // 4:3 * side // 4, side // 4:3 * side // 4]


def test_shrinking_filters_out_what_the_smaller_image_cannot_hold():
    """Halving 0.4 cycles/pixel stripes would give 0.8 cycles/pixel, above Nyquist: a single
    bilinear lookup folds them back as 0.2 cycles/pixel stripes of std 0.21, the wavelet chain
    leaves std 0.03."""
    out = warp(stripes(0.4), torch.tensor(scaling(0.5), dtype=torch.float32)[None])
    assert float(centre(out).std()) < 0.06


def test_rotation_keeps_most_of_the_detail():
    """White noise (variance 1) turned by 30 or 45 degrees keeps variance 0.61-0.62 (a single
    bilinear lookup keeps 0.43-0.44)."""
    torch.manual_seed(0)
    noise = torch.randn(64, 1, 32, 32)
    for degrees in (30, 45):
        inverse = torch.tensor(rotation(degrees), dtype=torch.float32).expand(64, 3, 3)
        assert float(centre(warp(noise, inverse)).var()) > 0.55


def test_the_pipe_warps_the_samples_off_the_pixel_grid_and_copies_the_others(monkeypatch):
    seen = []

    def recording_warp(x, inverse, taps=GEOMETRIC_FILTER):
        seen.append(inverse)
        return warp(x, inverse, taps)

    monkeypatch.setattr(ada, "warp", recording_warp)
    image = sample_images()["white noise"][None]
    images = image.expand(64, 2, SIDE, SIDE)
    torch.manual_seed(0)
    out = AugmentPipe({"rotate": 1.0})(images, 0.5)
    (inverse,) = seen
    copied = torch.tensor([torch.equal(o, image[0]) for o in out])
    turned = inverse[:, 0, 1].abs() > 1e-6
    assert torch.equal(copied, ~turned) and 0 < int(turned.sum()) < 64
    assert torch.equal(out[turned], warp(images, inverse)[turned])
