"""PNG output: image grids, and scatter plots for 2-D point sets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from gan_runner.data.datasets import to_uint8


def image_grid(images: Tensor, nrow: int | None = None) -> np.ndarray:
    """float [-1, 1] (N, C, H, W) -> an (H', W', C) uint8 array, ``nrow`` images per row (as
    square as possible when None)."""
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    grid = make_grid(to_uint8(images.cpu()), nrow=nrow, padding=1)
    return grid.permute(1, 2, 0).numpy()


def labelled_rows(grid: np.ndarray, labels: list[str], row_height: int,
                  padding: int = 1) -> np.ndarray:
    """``grid`` (from ``image_grid``: rows of ``row_height`` pixels between ``padding``-pixel
    lines) with a margin on the left that names each row, in white on the padding's black."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    boxes = [probe.textbbox((0, 0), label, font=font) for label in labels]
    margin = max(box[2] - box[0] for box in boxes) + 6
    mode = "L" if grid.shape[-1] == 1 else "RGB"
    canvas = Image.new(mode, (margin + grid.shape[1], grid.shape[0]), 0)
    canvas.paste(Image.fromarray(grid.squeeze(-1) if mode == "L" else grid), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for row, (label, box) in enumerate(zip(labels, boxes, strict=True)):
        top = padding + row * (row_height + padding)
        y = top + (row_height - (box[3] - box[1])) // 2 - box[1]
        draw.text((margin - 3 - (box[2] - box[0]), y), label, fill="white" if mode == "RGB"
                  else 255, font=font)
    array = np.asarray(canvas)
    return array[:, :, None] if mode == "L" else array


def class_grid(images: Tensor, labels: list[str]) -> np.ndarray:
    """Images (R * K, C, H, W) in rows of K, one row per label, the label beside its row."""
    per_row = len(images) // len(labels)
    return labelled_rows(image_grid(images, nrow=per_row), labels, images.shape[-2])


def scatter(points: Tensor, reference: Tensor | None = None, size: int = 512,
            extent: float | None = None) -> np.ndarray:
    """A density picture of 2-D samples (black on white), each reference point framed by a
    hollow red square, so that samples on a mode stay visible and a dropped mode shows empty."""
    points = points.detach().cpu().float()
    if extent is None:  # frame the reference when there is one: stray samples are clipped
        frame = reference if reference is not None else points
        extent = float(max(frame.abs().max(), 1.0)) * 1.25
    canvas = np.full((size, size, 3), 255, np.uint8)

    def pixels(xy: Tensor) -> tuple[np.ndarray, np.ndarray]:
        ij = ((xy / extent + 1) * 0.5 * (size - 1)).round().long().numpy()
        keep = ((ij >= 0) & (ij < size)).all(1)
        return size - 1 - ij[keep, 1], ij[keep, 0]

    rows, cols = pixels(points)
    counts = np.zeros((size, size))
    np.add.at(counts, (rows, cols), 1)
    shade = (255 * (1 - np.clip(counts / max(np.percentile(counts[counts > 0], 90), 1), 0, 1)))
    canvas[counts > 0] = shade[counts > 0, None].astype(np.uint8)
    if reference is not None:
        rows, cols = pixels(reference.cpu().float())
        offsets = [(dr, dc) for dr in range(-7, 8) for dc in range(-7, 8)
                   if max(abs(dr), abs(dc)) >= 6]
        for dr, dc in offsets:
            canvas[np.clip(rows + dr, 0, size - 1), np.clip(cols + dc, 0, size - 1)] = (
                220, 30, 30)
    return canvas


def save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path)


def samples_picture(samples: Tensor, reference: Tensor | None = None) -> np.ndarray:
    """The picture for a batch of samples: a grid for images, a scatter plot for points."""
    with torch.no_grad():
        if samples.dim() == 4:
            return image_grid(samples)
        return scatter(samples, reference)
