"""The whole-pixel ops that DiffAugment, ADA and bCR share: moves with three border fills and
one cut-out box per image, exact and differentiable."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan_runner.core.image_ops import cut_boxes, gather_pixels, translate

PAD_MODES = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect"}


def moved(image: torch.Tensor, dy: int, dx: int, fill: str, pad: int = 3) -> torch.Tensor:
    """image moved by (dy, dx), the uncovered border from torch's own padding."""
    big = F.pad(image[None], [pad] * 4, mode=PAD_MODES[fill])[0]
    h, w = image.shape[-2:]
    return big[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]


@pytest.mark.parametrize("fill", list(PAD_MODES))
def test_translate_moves_each_image_by_its_own_offset_with_the_chosen_border(fill):
    torch.manual_seed(0)
    images = torch.randn(12, 2, 7, 9)
    dy, dx = torch.randint(-3, 4, (12,)), torch.randint(-3, 4, (12,))
    out = translate(images, dy, dx, fill)
    for o, x, y, z in zip(out, images, dy.tolist(), dx.tolist(), strict=True):
        assert torch.equal(o, moved(x, y, z, fill))


@pytest.mark.parametrize("fill", list(PAD_MODES))
def test_a_flip_mirrors_the_image_before_it_moves(fill):
    torch.manual_seed(0)
    images = torch.randn(6, 3, 5, 8)
    dy, dx = torch.tensor([0, 1, -2, 2, 0, -1]), torch.tensor([0, -3, 1, 2, 3, 0])
    flip = torch.tensor([True, True, False, True, False, True])
    out = translate(images, dy, dx, fill, flip=flip)
    for o, x, f, y, z in zip(out, images, flip, dy.tolist(), dx.tolist(), strict=True):
        assert torch.equal(o, moved(x.flip(-1) if f else x, y, z, fill))


def test_reflection_keeps_mirroring_beyond_one_image_width():
    line = torch.arange(4.0).view(1, 1, 1, 4)
    cols = torch.arange(-7, 11).view(1, 1, -1)
    out = gather_pixels(line, torch.zeros_like(cols), cols, fill="reflect")
    # period 2 * (4 - 1) = 6: ... 3 2 1 | 0 1 2 3 | 2 1 0 1 2 3 2 1 ...
    assert out.flatten().tolist() == [1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]


def test_gather_reads_arbitrary_source_pixels_per_image():
    images = torch.arange(2 * 3 * 3.0).view(2, 1, 3, 3)
    rows = torch.tensor([[[2, 2], [0, 0]], [[1, 1], [1, 1]]])
    cols = torch.tensor([[[0, 2], [0, 2]], [[0, 1], [2, 3]]])
    out = gather_pixels(images, rows, cols, fill="zeros")
    assert out[0, 0].tolist() == [[6, 8], [0, 2]]
    assert out[1, 0].tolist() == [[12, 13], [14, 0]]  # column 3 is outside: zero


def test_cut_boxes_zeroes_the_marked_rows_times_columns_in_every_channel():
    images = torch.ones(2, 3, 4, 5)
    rows = torch.tensor([[False, True, True, False], [True, False, False, False]])
    cols = torch.tensor([[True, True, False, False, False], [False] * 4 + [True]])
    out = cut_boxes(images, rows, cols)
    hole = rows.unsqueeze(2) & cols.unsqueeze(1)
    assert torch.equal(out, (~hole).unsqueeze(1).float().expand(2, 3, 4, 5))


def test_gradients_reach_exactly_the_pixels_that_were_read():
    images = torch.randn(2, 1, 4, 4, requires_grad=True)
    out = translate(images, torch.tensor([1, 0]), torch.tensor([0, -2]), fill="zeros")
    out.sum().backward()
    # image 0 moved down by one: its last row left the frame; image 1 left by two
    assert images.grad[0, 0].tolist() == [[1] * 4] * 3 + [[0] * 4]
    assert images.grad[1, 0].tolist() == [[0, 0, 1, 1]] * 4


def test_unknown_fills_are_rejected():
    with pytest.raises(ValueError, match="fill"):
        translate(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long),
                  torch.zeros(1, dtype=torch.long), fill="wrap")
