"""Where a run's numbers and pictures go besides ``metrics.jsonl``: TensorBoard, Weights & Biases,
MLflow, CSV files. ``logger=[tensorboard,wandb]`` picks several at once.

Each logger is a class registered under its name with the schema of its options (one YAML per
logger in ``conf/logger/``); ``RunLog`` hands every one of them each row, picture and histogram.
Their libraries are optional extras: ``check_loggers`` refuses a logger whose package is missing
when the config is validated, in one line that names the extra, before the run writes anything.
TensorBoard, the default, is the exception: without it a run logs to ``metrics.jsonl`` only.

A resumed run replays the steps after its checkpoint. TensorBoard hides what the interrupted
process logged past that point (its purge step) and the CSV files are rewritten from
``metrics.jsonl``; W&B and MLflow cannot take a point back, so they are ``append_only`` and
``RunLog`` skips what they already hold: either way each step appears once.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from gan_runner.core.checks import require_choice
from gan_runner.core.errors import UserError
from gan_runner.core.registry import Registry

log = logging.getLogger(__name__)
NOT_SCALARS = ("kimg", "step")  # the x axis, not a curve
Row = Mapping[str, Any]


@dataclass
class LoggerConfig:
    """A logger's options; a logger without any has this schema."""


@dataclass(frozen=True)
class RunInfo:
    """What a logger knows of the run it logs."""

    run_dir: Path
    config: Mapping[str, Any]  # the resolved run config
    provenance: Mapping[str, Any]  # this process: command, versions, host, time (runlog.py)
    resume_step: int | None  # resumed after this step (images shown); None: a fresh start
    history: Sequence[Row]  # the rows metrics.jsonl kept from before this process


class Logger:
    """One destination. The methods do nothing by default: a logger implements what it shows.

    Steps are images shown to D (kimg * 1000), as TensorBoard's and W&B's x axis.
    """

    package: ClassVar[str | None] = None  # the Python package (and gan_runner extra) it needs
    optional: ClassVar[bool] = False  # a missing package only leaves it out (the default one)
    append_only: ClassVar[bool] = False  # cannot take back a step: skips replayed ones
    wants_histograms: ClassVar[bool] = False
    # errors of its backend (a server gone) that stop this logger, not the run
    failures: tuple[type[Exception], ...] = ()

    def __init__(self, run: RunInfo, cfg: LoggerConfig) -> None:
        self.run, self.cfg = run, cfg

    def write(self, row: Row, step: int) -> None: ...

    def image(self, tag: str, picture: np.ndarray, step: int) -> None: ...

    def histograms(self, values: Mapping[str, Tensor], step: int) -> None: ...

    def close(self) -> None: ...


LOGGERS: Registry[type[Logger]] = Registry("logger", group="logger")


def missing_extra(name: str, package: str) -> UserError:
    return UserError(f"logger={name} needs the {package} package, which is not installed",
                     f"pip install 'gan_runner[{package}]', or leave {name} out of logger=")


def check_loggers(names: Iterable[str]) -> None:
    """Refuse unknown loggers, and loggers whose package is missing (before the run starts)."""
    for name in names:
        cls = LOGGERS.get(name)
        if cls.package and not cls.optional and importlib.util.find_spec(cls.package) is None:
            raise missing_extra(name, cls.package)


def scalars(row: Row) -> dict[str, float]:
    """The numbers of a row that make curves (strings there are provenance)."""
    return {k: v for k, v in row.items()
            if isinstance(v, int | float) and k not in NOT_SCALARS}


def texts(row: Row) -> dict[str, str]:
    """A row's provenance: the strings (the extractor, its weights' hash, the real data...)."""
    return {k: v for k, v in row.items() if isinstance(v, str) and k != "kind"}


def run_name(run_dir: Path) -> str:
    """``2026-12-01/13-26-30``, or ``13-26-30/4`` for a sweep's job: the folder a person finds."""
    return "/".join(run_dir.resolve().parts[-2:])


def flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"kimg": 4}}`` -> ``{"trainer.kimg": 4}``: the dotted keys of overrides."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ---------------------------------------------------------------- TensorBoard
@LOGGERS.register("tensorboard", schema=LoggerConfig)
class TensorBoardLogger(Logger):
    """``tensorboard/``: the scalars, the sample grids, weight and gradient histograms."""

    package, optional, wants_histograms = "tensorboard", True, True

    def __init__(self, run: RunInfo, cfg: LoggerConfig) -> None:
        super().__init__(run, cfg)
        from torch.utils.tensorboard import SummaryWriter  # ImportError without tensorboard

        purge = None if run.resume_step is None else run.resume_step + 1
        self._writer = SummaryWriter(str(run.run_dir / "tensorboard"), purge_step=purge)

    def write(self, row: Row, step: int) -> None:
        for key, value in scalars(row).items():
            self._writer.add_scalar(key, value, step)

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self._writer.add_image(tag, picture, step, dataformats="HWC")

    def histograms(self, values: Mapping[str, Tensor], step: int) -> None:
        for tag, tensor in values.items():
            self._writer.add_histogram(tag, tensor, step)

    def close(self) -> None:
        self._writer.close()


# ---------------------------------------------------------------- Weights & Biases
WANDB_MODES = ("online", "offline", "disabled")


@dataclass
class WandbConfig(LoggerConfig):
    project: str = "gan_runner"
    entity: str | None = None  # None: your W&B default entity
    mode: str | None = None  # online | offline | disabled; None: $WANDB_MODE, else online

    def __post_init__(self) -> None:
        if self.mode is not None:
            require_choice("logger.wandb.mode", self.mode, WANDB_MODES)


@LOGGERS.register("wandb", schema=WandbConfig)
class WandbLogger(Logger):
    """A W&B run (files under ``wandb/``): the config with this process's provenance, the
    scalars at their step, sample grids, histograms; a metric's provenance (extractor, weights'
    hash) in the run's summary. A resumed run continues the same W&B run (``wandb/run_id``).
    Offline (``WANDB_MODE=offline``) it writes only the run directory; ``wandb sync`` uploads it.
    """

    package, append_only, wants_histograms = "wandb", True, True

    def __init__(self, run: RunInfo, cfg: WandbConfig) -> None:
        super().__init__(run, cfg)
        import wandb

        self._wandb = wandb
        self.failures = (wandb.errors.Error,)
        id_file = run.run_dir / "wandb" / "run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(6)
        try:
            self._run = wandb.init(
                project=cfg.project, entity=cfg.entity, mode=cfg.mode, dir=str(run.run_dir),
                id=run_id, name=run_name(run.run_dir), resume="allow", reinit="create_new",
                config={**run.config, "provenance": dict(run.provenance)},
                allow_val_change=True,  # a resumed run's provenance is newer
                # train.log holds the console; wrapping it would also record the progress bar
                settings=wandb.Settings(console="off"))
        except wandb.errors.Error as error:  # no API key, no server, a bad entity
            raise UserError(f"W&B could not start a run: {_first_line(error)}",
                            "run `wandb login`, or set WANDB_MODE=offline (then `wandb sync` "
                            f"{run.run_dir / 'wandb'})") from error
        id_file.write_text(run_id)

    def write(self, row: Row, step: int) -> None:
        self._run.log({**scalars(row), "kimg": step / 1000}, step=step)
        kind = row.get("kind", "row")
        for key, value in texts(row).items():
            self._run.summary[f"{kind}/{key}"] = value

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self._run.log({tag: self._wandb.Image(picture)}, step=step)

    def histograms(self, values: Mapping[str, Tensor], step: int) -> None:
        self._run.log({tag: self._wandb.Histogram(tensor.float().cpu().numpy())
                       for tag, tensor in values.items()}, step=step)

    def close(self) -> None:
        self._run.finish()


# ---------------------------------------------------------------- MLflow
@dataclass
class MlflowConfig(LoggerConfig):
    # None: $MLFLOW_TRACKING_URI, else a store in the run directory (mlflow/mlflow.db, SQLite:
    # MLflow 3 keeps its old file store behind MLFLOW_ALLOW_FILE_STORE)
    tracking_uri: str | None = None
    experiment: str = "gan_runner"


_NOT_IN_MLFLOW_KEYS = re.compile(r"[^\w./\- ]")


def mlflow_key(key: str) -> str:
    """MLflow takes letters, digits and ``_ - . / space`` in a metric or param name."""
    return _NOT_IN_MLFLOW_KEYS.sub("_", key)[:250]


@LOGGERS.register("mlflow", schema=MlflowConfig)
class MlflowLogger(Logger):
    """An MLflow run: the flattened config as params, this process's provenance as tags
    (``provenance.*``), the scalars at their step, sample grids as images, a metric's
    provenance as tags (``eval.features``...). A resumed run continues the same MLflow run
    (``mlflow/run_id``)."""

    package, append_only = "mlflow", True

    def __init__(self, run: RunInfo, cfg: MlflowConfig) -> None:
        super().__init__(run, cfg)
        from mlflow.entities import Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.failures = (MlflowException,)
        folder = run.run_dir / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        uri = cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        artifacts = None if uri else (folder / "artifacts").as_uri()
        uri = uri or f"sqlite:///{(folder / 'mlflow.db').resolve()}"
        id_file = folder / "run_id"
        self._client = client = MlflowClient(tracking_uri=uri)
        tags = [RunTag(mlflow_key(f"provenance.{k}"), str(v)[:8000])
                for k, v in run.provenance.items()]
        try:
            if id_file.is_file():
                self._run_id = id_file.read_text().strip()
                client.update_run(self._run_id, status="RUNNING")
                client.log_batch(self._run_id, tags=tags)
            else:
                experiment = client.get_experiment_by_name(cfg.experiment)
                experiment_id = (experiment.experiment_id if experiment else
                                 client.create_experiment(cfg.experiment, artifacts))
                self._run_id = client.create_run(experiment_id,
                                                 run_name=run_name(run.run_dir)).info.run_id
                params = [Param(mlflow_key(k), str(v)[:6000]) for k, v in flat(run.config).items()]
                for start in range(0, max(len(params), len(tags)), 100):  # MLflow's batch limit
                    client.log_batch(self._run_id, params=params[start:start + 100],
                                     tags=tags[start:start + 100])
                id_file.write_text(self._run_id)
        except MlflowException as error:
            raise UserError(f"MLflow could not start a run at {uri}: {_first_line(error)}",
                            "check logger.mlflow.tracking_uri, or leave it unset for a store "
                            "in the run directory") from error

    def write(self, row: Row, step: int) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(mlflow_key(k), float(v), now, step) for k, v in scalars(row).items()]
        kind = row.get("kind", "row")
        tags = [RunTag(mlflow_key(f"{kind}.{k}"), v[:8000]) for k, v in texts(row).items()]
        self._client.log_batch(self._run_id, metrics=metrics, tags=tags[:100])

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self._client.log_image(self._run_id, picture, key=mlflow_key(tag), step=step)

    def close(self) -> None:
        self._client.set_terminated(self._run_id, "FINISHED")


# ---------------------------------------------------------------- CSV
@LOGGERS.register("csv", schema=LoggerConfig)
class CsvLogger(Logger):
    """``csv/<kind>.csv`` (train, eval, final): one row per logged row, a column per key in
    the order first seen, provenance strings included, empty where a row has no value. The
    files are rebuilt from ``metrics.jsonl`` when the run (re)starts, so they always agree."""

    def __init__(self, run: RunInfo, cfg: LoggerConfig) -> None:
        super().__init__(run, cfg)
        self._folder = run.run_dir / "csv"
        self._folder.mkdir(parents=True, exist_ok=True)
        for stale in self._folder.glob("*.csv"):
            stale.unlink()
        self._rows: dict[str, list[Row]] = {}
        self._columns: dict[str, list[str]] = {}
        for row in run.history:
            if "kimg" in row:
                self._add(row)
        for kind in self._rows:
            self._rewrite(kind)

    def _add(self, row: Row) -> bool:
        """Keep ``row``; True when it brings a column its kind's file lacks."""
        kind = str(row.get("kind", "row"))
        columns = self._columns.setdefault(kind, ["kimg"])
        new = [key for key in row if key not in columns and key != "kind"]
        columns += new
        self._rows.setdefault(kind, []).append(row)
        return bool(new)

    def _line(self, kind: str, row: Row) -> list[Any]:
        """Empty where a row has no value, or a non-finite one (``metrics.jsonl``'s null)."""
        values = (row.get(column) for column in self._columns[kind])
        return ["" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
                for v in values]

    def _rewrite(self, kind: str) -> None:
        with open(self._folder / f"{kind}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(self._columns[kind])
            writer.writerows(self._line(kind, row) for row in self._rows[kind])

    def write(self, row: Row, step: int) -> None:
        kind = str(row.get("kind", "row"))
        first = kind not in self._rows
        if self._add(row) or first:  # a wider header: the file is written anew
            self._rewrite(kind)
            return
        with open(self._folder / f"{kind}.csv", "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow(self._line(kind, row))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
