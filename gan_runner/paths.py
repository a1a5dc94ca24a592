"""Where gan_runner keeps what it downloads or computes once: one rule for every cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_base(configured: str | None = None) -> Path:
    """``configured`` (e.g. ``metrics.cache_dir``), else ``$GAN_RUNNER_CACHE``, else
    ``~/.cache/gan_runner``: datasets, Inception weights and real-feature statistics."""
    base = configured or os.environ.get("GAN_RUNNER_CACHE") or Path.home() / ".cache" / "gan_runner"
    return Path(base).expanduser()
