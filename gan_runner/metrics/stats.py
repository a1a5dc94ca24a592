"""Real-data features, cached on disk under a key of everything that made them, and the one
pass of input batches through every extractor an evaluation uses.

The key covers the dataset (its description: name, split, resolution, fit), the image count,
the extractor (name and weights hash) and its resize mode, so changing any of them computes
new features instead of silently reusing stale ones. Each cache file has a JSON twin that
says how it was made.

Batches carry their global index, so a sharded evaluation (each rank extracting every
size-th batch) gathers exactly the rows, in exactly the order, that one process computes.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_runner.core.paths import atomic_write, cache_base
from gan_runner.data.datasets import RealData
from gan_runner.metrics.features.base import FeatureExtractor

CACHE_VERSION = 1
Outputs = dict[str, np.ndarray]
# (global batch index, input batch): this process's share of an evaluation's batches
Batches = Iterable[tuple[int, Tensor]]


@dataclass(frozen=True)
class Shard:
    """This process's part of an evaluation: rank ``rank`` of ``size`` takes every size-th
    batch; ``all_gather(obj)`` returns every rank's ``obj`` in rank order (a collective: every
    rank calls it at the same point)."""

    rank: int
    size: int
    all_gather: Callable[[Any], list[Any]]

    def owns(self, batch_index: int) -> bool:
        return batch_index % self.size == self.rank

    @classmethod
    def of_process_group(cls) -> Shard:
        """The initialized ``torch.distributed`` group (gloo or NCCL), or one process."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return ALONE

        def gather(obj: Any) -> list[Any]:
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, obj)
            return everyone

        return cls(dist.get_rank(), dist.get_world_size(), gather)


ALONE = Shard(0, 1, lambda obj: [obj])


def cache_root(configured: str | None) -> Path:
    return cache_base(configured) / "stats"


def stats_key(data: RealData, count: int, extractor: FeatureExtractor) -> dict[str, Any]:
    path = {"extraction": "fast"} if extractor.fast else {}
    return {"dataset": data.description, "count": count, "extractor": extractor.name,
            "extractor_sha256": extractor.sha256, "resize": extractor.resize,
            "version": CACHE_VERSION, **path}


def extractor_input(data: RealData, indices: torch.Tensor) -> torch.Tensor:
    """uint8 images exactly as stored, or the raw points of 2-D data."""
    return data.uint8_batch(indices) if hasattr(data, "uint8_batch") else data.batch(indices)


def extract(extractors: dict[str, FeatureExtractor], batches: Batches, device: torch.device,
            shard: Shard = ALONE, advance: Callable[[int], None] = lambda n: None,
            ) -> dict[str, Outputs]:
    """Every batch through every extractor once (one generation or read serves all feature
    spaces), gathered over the shard's ranks in global batch order."""
    parts: dict[str, list[tuple[int, Outputs]]] = {space: [] for space in extractors}
    with torch.inference_mode():
        for index, batch in batches:
            batch = batch.to(device)
            for space, extractor in extractors.items():
                outputs = extractor(batch)
                parts[space].append((index, {key: value.float().cpu().numpy()
                                             for key, value in outputs.items()}))
            advance(len(batch) * shard.size)
    everyone = shard.all_gather(parts) if shard.size > 1 else [parts]
    result: dict[str, Outputs] = {}
    for space in extractors:
        chunks = sorted((chunk for rank in everyone for chunk in rank[space]),
                        key=lambda chunk: chunk[0])
        result[space] = {key: np.concatenate([outputs[key] for _, outputs in chunks])
                         for key in chunks[0][1]}
    return result


def real_order(size: int, count: int) -> Tensor:
    """All samples, or a fixed seeded choice of ``count`` (folders are often sorted by class)."""
    if count == size:
        return torch.arange(count)
    return torch.randperm(size, generator=torch.Generator().manual_seed(0))[:count]


def cache_path(data: RealData, count: int, extractor: FeatureExtractor,
               cache_dir: str | None) -> Path:
    key = stats_key(data, count, extractor)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root(cache_dir) / f"{extractor.name}-{count}-{digest}.npz"


def load_cached(path: Path) -> Outputs | None:
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as cached:
        return dict(cached)


def save_cached(path: Path, key: dict[str, Any], features: Outputs) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **features)
    atomic_write(path, buffer.getvalue())
    path.with_suffix(".json").write_text(json.dumps(key, indent=2))
