"""Whole-pixel image ops shared by the augmentations (DiffAugment, ADA) and the consistency
regularizer (bCR): moving pixels by integer offsets and cutting out boxes.

They live in core because ``augment`` and ``objectives`` are sibling layers that may not import
each other. The ops only copy, mask or zero pixels, never interpolate, so they are exact (a
value that comes out is a value that went in, or 0) and differentiable in the image. Every
random draw stays with the caller, which keeps each caller's draws and their order its own.
"""

from __future__ import annotations

import torch
from torch import Tensor

FILLS = ("zeros", "replicate", "reflect")


def _fold(index: Tensor, size: int, fill: str) -> tuple[Tensor, Tensor | None]:
    """Source indices brought into [0, size) as ``fill`` extends the image beyond its border,
    and for ``zeros`` the mask of those that were inside (the others read 0)."""
    if fill == "zeros":
        inside = (index >= 0) & (index < size)
        return index.clamp(0, size - 1), inside
    if fill == "replicate":
        return index.clamp(0, size - 1), None
    if fill == "reflect":
        # mirror about the border pixels' centres (the edge pixel is not repeated), periodic
        # beyond one reflection, as torch.nn.functional.pad(mode="reflect") within its range
        if size == 1:
            return torch.zeros_like(index), None
        period = 2 * (size - 1)
        index = index.remainder(period)
        return torch.where(index >= size, period - index, index), None
    raise ValueError(f"fill {fill!r} is not one of {FILLS}")


def gather_pixels(images: Tensor, rows: Tensor, cols: Tensor, fill: str) -> Tensor:
    """``out[n, :, i, j] = images[n, :, rows[n, i, j], cols[n, i, j]]`` for integer source
    coordinates that may lie outside the image, which ``fill`` then extends by zeros, by its
    border pixels or by reflection. ``rows`` and ``cols`` broadcast to (N, H_out, W_out), so
    separable moves pass (N, H_out, 1) and (N, 1, W_out)."""
    n, _, height, width = images.shape
    rows, row_inside = _fold(rows, height, fill)
    cols, col_inside = _fold(cols, width, fill)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    out = images.permute(0, 2, 3, 1)[batch, rows, cols]  # (N, H_out, W_out, C)
    if row_inside is not None and col_inside is not None:
        inside = (row_inside & col_inside).unsqueeze(-1)
        out = torch.where(inside, out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out.permute(0, 3, 1, 2)


def translate(images: Tensor, dy: Tensor, dx: Tensor, fill: str,
              flip: Tensor | None = None) -> Tensor:
    """Each image moved down by ``dy`` and right by ``dx`` whole pixels (integer tensors of
    shape (N,)), the uncovered border filled as ``fill`` says; where ``flip`` (bool, (N,)) is
    set the image is mirrored left-right first."""
    n, _, height, width = images.shape
    device = images.device
    rows = torch.arange(height, device=device).view(1, height, 1) - dy.view(n, 1, 1)
    cols = torch.arange(width, device=device).view(1, 1, width) - dx.view(n, 1, 1)
    if flip is not None:
        cols = torch.where(flip.view(n, 1, 1), width - 1 - cols, cols)
    return gather_pixels(images, rows, cols, fill)


def cut_boxes(images: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Zero one axis-aligned box per image, in every channel: the pixels whose row is marked in
    ``rows`` (bool, (N, H)) and whose column is marked in ``cols`` (bool, (N, W))."""
    hole = rows.unsqueeze(2) & cols.unsqueeze(1)
    return images * (~hole).unsqueeze(1).to(images.dtype)
