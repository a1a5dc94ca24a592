"""Where gan_runner keeps what it downloads or computes once: one rule for every cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_base(configured: str | None = None) -> Path:
    """``configured`` (e.g. ``metrics.cache_dir``), else ``$GAN_RUNNER_CACHE``, else
    ``~/.cache/gan_runner``: datasets, Inception weights and real-feature statistics."""
    base = configured or os.environ.get("GAN_RUNNER_CACHE") or Path.home() / ".cache" / "gan_runner"
    return Path(base).expanduser()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the new
    one, never a part: a temporary file in the same folder, flushed to disk, renamed over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
