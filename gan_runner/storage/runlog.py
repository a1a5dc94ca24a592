"""The run's metric stream: ``metrics.jsonl`` always, and the loggers the run picked
(``logger=[tensorboard,wandb,mlflow,csv]``: storage/loggers.py)."""

from __future__ import annotations

import json
import logging
import math
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gan_runner import __version__
from gan_runner.core.paths import atomic_write
from gan_runner.storage.loggers import (
    LOGGERS,
    Logger,
    LoggerConfig,
    RunInfo,
    check_loggers,
    missing_extra,
)

log = logging.getLogger(__name__)
PROVENANCE_FILE = "provenance.jsonl"
Loggers = Mapping[str, LoggerConfig | None] | Iterable[str]


class RunLog:
    """One JSON object per line, flushed at once, so a crash loses no logged row; the same rows,
    pictures and histograms go to each logger in ``loggers`` (names, or a config's
    ``logger`` mapping of names to options).

    A run resumed at ``resume_kimg`` replays the steps after its checkpoint, so the rows logged
    past that point by the interrupted process are dropped (TensorBoard hides them with its purge
    step, W&B and MLflow are not sent them again): the log reads as if the run had never stopped.
    Each start of the run that logs a row adds a line to ``provenance.jsonl``: the command,
    versions, host, time (and what the caller adds in ``provenance``), which W&B and MLflow
    record too. It waits for that first row, so that a start which fails before logging
    anything leaves the run's files as they were.
    """

    def __init__(self, run_dir: Path, *, resume_kimg: float | None = None,
                 loggers: Loggers = ("tensorboard",), config: Mapping[str, Any] | None = None,
                 provenance: Mapping[str, Any] | None = None) -> None:
        chosen = _selected(loggers)  # refused before anything is written
        self.path = run_dir / "metrics.jsonl"
        self._replayed_until = -1  # the last step the interrupted process logged
        if resume_kimg is not None and self.path.exists():
            logged = [k for k in map(_row_kimg, _lines(self.path)) if math.isfinite(k)]
            self._replayed_until = _step(max(logged, default=-1.0))
            _drop_rows_after(self.path, resume_kimg)
        history = _parsed(_lines(self.path)) if self.path.exists() else []
        self.provenance = {**run_provenance(), **(provenance or {}), "resumed_at_kimg": resume_kimg}
        self._provenance_path: Path | None = run_dir / PROVENANCE_FILE  # with the first row
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the run
        run = RunInfo(run_dir, config or {}, self.provenance,
                      None if resume_kimg is None else _step(resume_kimg), history)
        self._loggers: dict[str, Logger] = {}
        for name, cfg in chosen.items():
            opened = _open(name, cfg, run)
            if opened is not None:
                self._loggers[name] = opened

    @property
    def loggers(self) -> list[str]:
        """The loggers this run writes to (without a missing optional one)."""
        return list(self._loggers)

    def write(self, row: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in row.items()}
        if self._provenance_path is not None:
            with open(self._provenance_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(self.provenance, default=str) + "\n")
            self._provenance_path = None
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        if "kimg" in row:
            self._each("write", _step(row["kimg"]), row)

    def image(self, tag: str, picture: np.ndarray, kimg: float) -> None:
        self._each("image", _step(kimg), tag, picture)

    def histograms(self, prefix: str, module: nn.Module, kimg: float) -> None:
        """Each parameter's values as ``{prefix}/weights/{name}`` and, when it holds one, its
        last gradient as ``{prefix}/grads/{name}``: drifting or dying layers show up here long
        before they show in the losses."""
        if not any(logger.wants_histograms for logger in self._loggers.values()):
            return
        values: dict[str, Tensor] = {}
        for name, param in module.named_parameters():
            values[f"{prefix}/weights/{name}"] = param.detach()
            if param.grad is not None:
                values[f"{prefix}/grads/{name}"] = param.grad
        self._each("histograms", _step(kimg), _finite(values), wanted="wants_histograms")

    def _each(self, method: str, step: int, *args: Any, wanted: str | None = None) -> None:
        """Call ``method`` on every logger that takes it at ``step``. A logger whose backend
        fails (a server gone) is dropped with a warning: the run and its other logs go on."""
        for name, logger in list(self._loggers.items()):
            if (wanted and not getattr(logger, wanted)) or (
                    logger.append_only and step <= self._replayed_until):
                continue
            try:
                getattr(logger, method)(*args, step)
            except logger.failures as error:
                log.warning("logger %s failed (%s): it logs nothing more in this run",
                            name, error)
                del self._loggers[name]

    def close(self) -> None:
        self._file.close()
        for name, logger in self._loggers.items():
            try:
                logger.close()
            except logger.failures as error:
                log.warning("logger %s failed to close (%s)", name, error)


def _selected(loggers: Loggers) -> dict[str, LoggerConfig | None]:
    chosen = dict(loggers) if isinstance(loggers, Mapping) else dict.fromkeys(loggers)
    check_loggers(chosen)
    return chosen


def _open(name: str, cfg: LoggerConfig | None, run: RunInfo) -> Logger | None:
    """The logger ``name`` (its schema's defaults when ``cfg`` is None); None when it is the
    optional one and its package is missing."""
    entry = LOGGERS.entry(name)
    cls = entry.value
    try:
        return cls(run, cfg if cfg is not None else (entry.schema or LoggerConfig)())
    except ImportError as error:
        if not cls.optional:
            raise missing_extra(name, cls.package or name) from error
        log.info("%s is not installed: not logging to it (pip install 'gan_runner[%s]')",
                 cls.package, cls.package)
        return None


def _finite(values: dict[str, Tensor]) -> dict[str, Tensor]:
    """Finite values only: TensorBoard raises on a tensor with none, and a diverged run must
    still reach its checkpoint (the failure watch reports the NaNs)."""
    kept = {tag: tensor[torch.isfinite(tensor)] for tag, tensor in values.items()}
    return {tag: tensor for tag, tensor in kept.items() if tensor.numel()}


def _step(kimg: float) -> int:
    """Images shown to D: every logger's x axis."""
    return round(kimg * 1000)


def run_provenance() -> dict[str, Any]:
    """What this process is: its command line, the code's versions, the machine, the time."""
    found = {"command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
             "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "gan_runner": __version__, "git_head": _git_head(), "torch": torch.__version__,
             "python": platform.python_version(), "host": platform.node(),
             "platform": platform.platform()}
    return {k: v for k, v in found.items() if v is not None}


def _git_head() -> str | None:
    """The commit checked out where gan_runner runs from source (local changes not counted);
    None for an installed wheel. Read-only: ``rev-parse`` never touches the index."""
    source = Path(__file__).resolve().parents[2]
    if not (source / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _drop_rows_after(path: Path, kimg: float) -> None:
    """Rewrites ``path`` without rows past ``kimg`` (atomically: a crash keeps the old file)."""
    lines = _lines(path)
    keep = [line for line in lines if line.strip() and _row_kimg(line) <= kimg + 1e-9]
    if len(keep) < len(lines):
        atomic_write(path, "".join(keep).encode("utf-8"))


def _parsed(lines: list[str]) -> list[dict[str, Any]]:
    """The rows that parse (a fresh start in an old run's folder may find a cut last line)."""
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return [row for row in rows if isinstance(row, dict)]


def _row_kimg(line: str) -> float:
    try:
        return float(json.loads(line).get("kimg", 0.0))
    except ValueError:  # a line cut short by a kill: drop it
        return math.inf


def read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
