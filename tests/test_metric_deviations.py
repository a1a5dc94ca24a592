"""The real-feature cache is keyed on everything that makes the features (issue 19): a
change of channels, of a folder's images or of the extraction path computes them anew. (The
precision/recall boundary rule is in test_metric_formulas.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from gan_runner.data.images import ImageDatasetConfig, image_folder_set
from gan_runner.metrics.features import build_extractor
from gan_runner.metrics.stats import stats_key


def write_folder(folder: Path, seed: int, count: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def folder_key(folder: Path, channels: int = 3) -> dict:
    cfg = ImageDatasetConfig(name="image_folder", root=str(folder), resolution=16,
                             channels=channels, fit="resize")
    return stats_key(image_folder_set(cfg), 4, build_extractor("toy"))


def test_the_real_feature_cache_tells_channel_counts_apart(tmp_path):
    folder = write_folder(tmp_path / "images", seed=0)
    assert folder_key(folder, channels=1) != folder_key(folder, channels=3)


def test_replaced_images_with_the_same_count_get_new_real_features(tmp_path):
    folder = write_folder(tmp_path / "images", seed=0)
    before = folder_key(folder)
    assert folder_key(folder) == before  # the same files: the cache is reused
    write_folder(folder, seed=1)  # the same names and count, other pixels
    os.utime(folder / "0.png", ns=(1, 1))  # even a copy that keeps sizes changes the time
    assert folder_key(folder) != before


def test_features_of_the_fast_path_are_cached_apart_from_the_reference_paths(tmp_path):
    """The fast path's features differ from the reference path's by rounding (1e-5), so a
    cache made by one is not the other's; an extractor without a fast path keeps one key."""
    data = image_folder_set(ImageDatasetConfig(name="image_folder", fit="resize", resolution=16,
                                               root=str(write_folder(tmp_path / "images", 0))))
    reference = stats_key(data, 4, build_extractor("toy"))
    assert stats_key(data, 4, build_extractor("toy").use_fast_path()) == reference
    with_fast_path = build_extractor("toy")
    with_fast_path.has_fast_path = True
    assert with_fast_path.use_fast_path().extraction == "fast"
    assert stats_key(data, 4, with_fast_path) == {**reference, "extraction": "fast"}
