"""The run's metric stream: ``metrics.jsonl`` always, TensorBoard when it is installed."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gan_runner.core.paths import atomic_write

log = logging.getLogger(__name__)


class RunLog:
    """One JSON object per line, flushed at once, so a crash loses no logged row.

    A run resumed at ``resume_kimg`` replays the steps after its checkpoint, so the rows logged
    past that point by the interrupted process are dropped (and hidden in TensorBoard with its
    purge step): the log reads as if the run had never stopped.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True,
                 resume_kimg: float | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resume_kimg is not None and self.path.exists():
            _drop_rows_after(self.path, resume_kimg)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the run
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed: logging to metrics.jsonl only")
            else:
                purge = None if resume_kimg is None else round(resume_kimg * 1000) + 1
                self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)

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

    def histograms(self, prefix: str, module: nn.Module, kimg: float) -> None:
        """Each parameter's values as ``{prefix}/weights/{name}`` and, when it holds one, its
        last gradient as ``{prefix}/grads/{name}``: drifting or dying layers show up here long
        before they show in the losses."""
        if self._tb is None:
            return
        step = round(kimg * 1000)
        for name, param in module.named_parameters():
            self._histogram(f"{prefix}/weights/{name}", param.detach(), step)
            if param.grad is not None:
                self._histogram(f"{prefix}/grads/{name}", param.grad, step)

    def _histogram(self, tag: str, values: Tensor, step: int) -> None:
        """Finite values only: TensorBoard raises on a tensor with none, and a diverged run
        must still reach its checkpoint (the failure watch reports the NaNs)."""
        finite = values[torch.isfinite(values)]
        if finite.numel():
            self._tb.add_histogram(tag, finite, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _drop_rows_after(path: Path, kimg: float) -> None:
    """Rewrites ``path`` without rows past ``kimg`` (atomically: a crash keeps the old file)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [line for line in lines if line.strip() and _row_kimg(line) <= kimg + 1e-9]
    if len(keep) < len(lines):
        atomic_write(path, "".join(keep).encode("utf-8"))


def _row_kimg(line: str) -> float:
    try:
        return float(json.loads(line).get("kimg", 0.0))
    except ValueError:  # a line cut short by a kill: drop it
        return math.inf


def read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
