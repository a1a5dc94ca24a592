"""The run-level schemas: the optimizer, the trainer and the whole run composed of the groups.

Each component's own schema lives in its module (``DCGANConfig`` in ``models/dcgan.py``...).

Hydra merges each YAML option onto its schema, so an unknown key or a value of the wrong type is
rejected while the config is composed; ``__post_init__`` checks ranges once the config is turned
into these objects (``OmegaConf.to_object``), before anything is built or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from gan_runner.augment.base import AugmentConfig
from gan_runner.core.checks import require, require_choice
from gan_runner.core.errors import UserError
from gan_runner.metrics.base import MetricsConfig
from gan_runner.models.conditioning import ConditioningConfig
from gan_runner.objectives.base import LossConfig, RegularizerConfig
from gan_runner.storage.loggers import LoggerConfig, check_loggers


def unknown_setting(key: str) -> UserError:
    """For a key no schema declares, whether Hydra caught it or a ``+key=`` slipped past."""
    return UserError(f"{key} is not a known setting",
                     "see `gan-train --cfg job` for the valid keys")


# ---------------------------------------------------------------- optimizer
@dataclass
class OptimizerConfig:
    """Separate G and D settings (TTUR: Heusel et al. 2017)."""

    name: str = "adam"
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    g_betas: tuple[float, float] = (0.5, 0.999)
    d_betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8
    momentum: float = 0.0  # sgd and rmsprop
    alpha: float = 0.99  # rmsprop smoothing
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # constant | linear: decay to 0 at trainer.kimg (WGAN-GP)

    def __post_init__(self) -> None:
        require_choice("optimizer.name", self.name, ("adam", "rmsprop", "sgd"))
        require_choice("optimizer.lr_schedule", self.lr_schedule, ("constant", "linear"))
        for key in ("g_lr", "d_lr", "eps"):
            value = getattr(self, key)
            require(value > 0, f"optimizer.{key}", value, "a positive number")
        for key in ("g_betas", "d_betas"):
            betas = tuple(getattr(self, key))
            require(len(betas) == 2 and all(0 <= b < 1 for b in betas), f"optimizer.{key}",
                    list(betas), "two numbers in [0, 1)")
        require(0 <= self.momentum < 1, "optimizer.momentum", self.momentum, "a number in [0, 1)")
        require(0 < self.alpha < 1, "optimizer.alpha", self.alpha, "a number in (0, 1)")
        require(self.weight_decay >= 0, "optimizer.weight_decay", self.weight_decay,
                "a non-negative number")


# ---------------------------------------------------------------- trainer
@dataclass
class TrainerConfig:
    """How long and how a run trains, and how often it reports."""

    batch_size: int = 64
    kimg: float = 100.0  # length of training in thousands of real images shown to D
    d_steps: int = 1  # D steps per G step (n_critic)
    ema_kimg: float = 10.0  # half-life of the G-EMA weights, in kimg
    ema_rampup: float | None = 0.05  # half-life <= kimg_done * rampup early on; null = off
    log_every_kimg: float = 1.0
    snapshot_every_kimg: float = 20.0
    checkpoints_keep: int = 3
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 adds a gradient scaler)
    channels_last: bool = False  # NHWC layout for image models
    compile: bool = False  # torch.compile the main G/D forward passes (eager fallback)
    # torch.compile's mode: default | reduce-overhead (CUDA graphs) | max-autotune
    compile_mode: str = "default"
    tf32: bool = False  # TensorFloat-32 on Ampere+ GPUs
    streams: str = "auto"  # auto | off | N: CUDA streams for a phase's independent tasks
    timing: bool = True  # per-task step times in the log (time/<phase>/<task>, ms)
    data_workers: int = 2  # processes decoding batches of sets not held in memory (0: none)
    nonfinite_patience: int = 8  # non-finite steps in a row before the last checkpoint returns
    max_restores: int = 3  # checkpoint restores a run may make before it gives up
    resume: str | None = "auto"  # auto | null (start fresh) | path to a checkpoint
    grid_size: int = 64  # images in the fixed-latent sample grid
    progress: bool = True  # the rich progress display; off for logs that must stay plain

    def __post_init__(self) -> None:
        require(self.batch_size > 0, "trainer.batch_size", self.batch_size, "a positive batch size")
        require(self.kimg > 0, "trainer.kimg", self.kimg, "a positive training length in kimg")
        require(self.d_steps >= 1, "trainer.d_steps", self.d_steps, "at least 1 D step per G step")
        require(self.ema_kimg >= 0, "trainer.ema_kimg", self.ema_kimg, "a non-negative half-life")
        require(self.ema_rampup is None or self.ema_rampup > 0, "trainer.ema_rampup",
                self.ema_rampup, "a positive ratio or null")
        for key in ("log_every_kimg", "snapshot_every_kimg"):
            value = getattr(self, key)
            require(value > 0, f"trainer.{key}", value, "a positive interval in kimg")
        require(self.checkpoints_keep >= 1, "trainer.checkpoints_keep", self.checkpoints_keep,
                "at least 1")
        require_choice("trainer.device", self.device, ("auto", "cpu", "cuda"))
        require_choice("trainer.precision", self.precision, ("fp32", "bf16", "fp16"))
        require_choice("trainer.compile_mode", self.compile_mode,
                       ("default", "reduce-overhead", "max-autotune"))
        require(self.data_workers >= 0, "trainer.data_workers", self.data_workers,
                "a non-negative number of processes")
        self.streams = str(self.streams)
        lanes = self.streams.isdigit() and int(self.streams) > 0
        require(self.streams in ("auto", "off") or lanes, "trainer.streams", self.streams,
                "auto, off or a positive number of streams")
        require(self.nonfinite_patience >= 1, "trainer.nonfinite_patience",
                self.nonfinite_patience, "at least 1 step")
        require(self.max_restores >= 0, "trainer.max_restores", self.max_restores,
                "a non-negative count")
        require(self.grid_size > 0, "trainer.grid_size", self.grid_size, "a positive count")


# ---------------------------------------------------------------- the whole run
@dataclass
class TrainConfig:
    """One training run, composed from the groups."""

    dataset: Any = MISSING
    model: Any = MISSING
    loss: LossConfig = field(default_factory=LossConfig)
    regularizer: dict[str, RegularizerConfig] = field(default_factory=dict)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    # where the rows go besides metrics.jsonl: logger=[tensorboard,wandb] (conf/train.yaml
    # picks tensorboard; empty here, as a group's selection adds to it)
    logger: dict[str, LoggerConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_loggers(self.logger)
        self.metrics = self.metrics.resolved(self.dataset)  # metrics=auto: fid or toy
