"""The run's metric stream: ``metrics.jsonl`` always, TensorBoard when it is installed."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class RunLog:
    """One JSON object per line, flushed at once, so a crash loses no logged row."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / "metrics.jsonl"
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the run
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed: logging to metrics.jsonl only")
            else:
                self._tb = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, row: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in row.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        if self._tb is not None and "kimg" in row:
            step = round(row["kimg"] * 1000)
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("kimg", "step"):
                    self._tb.add_scalar(key, value, step)

    def image(self, tag: str, picture: np.ndarray, kimg: float) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, picture, round(kimg * 1000), dataformats="HWC")

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
