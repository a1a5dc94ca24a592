"""Real-data features, cached on disk under a key of everything that made them.

The key covers the dataset (its description: name, split, resolution, fit), the image count,
the extractor (name and weights hash) and its resize mode, so changing any of them computes
new features instead of silently reusing stale ones. Each cache file has a JSON twin that
says how it was made.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_runner.core.paths import atomic_write, cache_base
from gan_runner.data.datasets import RealData
from gan_runner.metrics.features.base import FeatureExtractor

CACHE_VERSION = 1


def cache_root(configured: str | None) -> Path:
    return cache_base(configured) / "stats"


def stats_key(data: RealData, count: int, extractor: FeatureExtractor) -> dict[str, Any]:
    return {"dataset": data.description, "count": count, "extractor": extractor.name,
            "extractor_sha256": extractor.sha256, "resize": extractor.resize,
            "version": CACHE_VERSION}


def extractor_input(data: RealData, indices: torch.Tensor) -> torch.Tensor:
    """uint8 images exactly as stored, or the raw points of 2-D data."""
    return data.uint8_batch(indices) if hasattr(data, "uint8_batch") else data.batch(indices)


@torch.no_grad()
def extract(extractor: FeatureExtractor, batches, total: int, device: torch.device,
            advance: Callable[[int], None] = lambda n: None) -> dict[str, np.ndarray]:
    """Run ``extractor`` over an iterable of input batches; concatenate its outputs."""
    outputs: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        for key, value in extractor(batch.to(device)).items():
            outputs.setdefault(key, []).append(value.float().cpu().numpy())
        advance(len(batch))
    return {key: np.concatenate(values)[:total] for key, values in outputs.items()}


def real_features(data: RealData, count: int | None, extractor: FeatureExtractor,
                  cache_dir: str | None, batch_size: int, device: torch.device,
                  advance: Callable[[int], None] = lambda n: None,
                  ) -> tuple[dict[str, np.ndarray], Path]:
    """Features of ``count`` samples of ``data`` (all when None; otherwise a fixed seeded
    choice, since folders are often sorted by class), from the cache if an identical
    computation was done before."""
    count = min(count or len(data), len(data))
    order = (torch.arange(count) if count == len(data)
             else torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:count])
    key = stats_key(data, count, extractor)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_root(cache_dir) / f"{extractor.name}-{count}-{digest}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as cached:
            advance(count)
            return dict(cached), path
    batches = (extractor_input(data, order[i:i + batch_size]) for i in range(0, count, batch_size))
    features = extract(extractor, batches, count, device, advance)
    buffer = io.BytesIO()
    np.savez(buffer, **features)
    atomic_write(path, buffer.getvalue())
    path.with_suffix(".json").write_text(json.dumps(key, indent=2))
    return features, path
