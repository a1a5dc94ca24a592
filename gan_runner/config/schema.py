"""Dataclass schemas for every config group.

Hydra merges each YAML option onto its schema, so an unknown key or a value of the wrong type is
rejected while the config is composed; ``__post_init__`` checks ranges once the config is turned
into these objects (``OmegaConf.to_object``), before anything is built or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from gan_runner.errors import UserError


def require(condition: bool, key: str, value: Any, expected: str) -> None:
    """Reject a config value with the one-line message users see."""
    if not condition:
        raise UserError(f"{key}={value!r} is not valid", f"expected {expected}")


def require_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    require(value in choices, key, value, "one of " + "|".join(choices))


def unknown_setting(key: str) -> UserError:
    """For a key no schema declares, whether Hydra caught it or a ``+key=`` slipped past."""
    return UserError(f"{key} is not a known setting",
                     "see `gan-train --cfg job` for the valid keys")


# ---------------------------------------------------------------- dataset
def require_penalty_weights(dataset: ToyDatasetConfig | ImageDatasetConfig) -> None:
    """Both dataset kinds carry the weights regularizer=r1|r2|gp start from, scaled to the data."""
    for key in ("r1_gamma", "gp_lambda"):
        value = getattr(dataset, key)
        require(value >= 0, f"dataset.{key}", value, "a non-negative weight")


@dataclass
class ToyDatasetConfig:
    """A 2-D Gaussian mixture, sampled once from ``seed`` into ``num_samples`` points."""

    name: str = MISSING
    num_samples: int = 100_000
    std: float = 0.05
    scale: float = 2.0  # ring radius, or grid spacing
    seed: int = 0
    # R1/R2 penalise ||grad D||^2, whose size depends on the data's scale: the images' gamma of
    # 10 flattens D across a grid of points 2 apart (HQ samples 7%), 0.1 lets it separate them
    r1_gamma: float = 0.1
    # WGAN-GP's lambda weighs (||grad D|| - 1)^2 against the critic's score gap, which grows with
    # the data's scale: the images' 10 leaves the toy critic a tilted plane, 1 lets it form peaks
    gp_lambda: float = 1.0

    def __post_init__(self) -> None:
        require(self.num_samples > 0, "dataset.num_samples", self.num_samples, "a positive count")
        require(self.std > 0, "dataset.std", self.std, "a positive standard deviation")
        require(self.scale > 0, "dataset.scale", self.scale, "a positive number")
        require_penalty_weights(self)


@dataclass
class ImageDatasetConfig:
    """An image set, fitted to ``resolution`` x ``resolution`` and scaled to [-1, 1]."""

    name: str = MISSING
    root: str | None = None
    split: str = "train"
    resolution: int = 32
    channels: int = 1  # image_folder converts to this many channels; fixed by the others
    fit: str = "pad"  # pad | resize | center_crop: how a non-matching image becomes square
    max_images: int | None = None
    subset_seed: int = 0
    download: bool = False
    hflip: bool = False  # dataset x-flip augmentation (doubles the effective set, as in ADA)
    heldout: int = 0  # images outside the max_images subset kept for the r_v diagnostic
    r1_gamma: float = 10.0  # the R1/R2 weight that regularizer=r1|r2 start from (StyleGAN's)
    gp_lambda: float = 10.0  # the weight regularizer=gp starts from (WGAN-GP's)

    def __post_init__(self) -> None:
        require_choice("dataset.split", self.split, ("train", "test"))
        require(4 <= self.resolution <= 4096, "dataset.resolution", self.resolution,
                "a side length in pixels between 4 and 4096")
        require(self.channels in (1, 3), "dataset.channels", self.channels, "1 or 3")
        require_choice("dataset.fit", self.fit, ("pad", "resize", "center_crop"))
        require(self.max_images is None or self.max_images > 0, "dataset.max_images",
                self.max_images, "a positive count or null for all images")
        require(self.heldout >= 0, "dataset.heldout", self.heldout, "a non-negative count")
        require_penalty_weights(self)


# ---------------------------------------------------------------- model
@dataclass
class MLPConfig:
    """Fully connected G and D for low-dimensional data (the 2-D toy sets)."""

    name: str = "mlp"
    z_dim: int = 16
    hidden: int = 256
    layers: int = 3
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        require(self.z_dim > 0, "model.z_dim", self.z_dim, "a positive latent size")
        require(self.hidden > 0, "model.hidden", self.hidden, "a positive width")
        require(self.layers >= 1, "model.layers", self.layers, "at least 1 hidden layer")


@dataclass
class DCGANConfig:
    """DCGAN G/D whose depth follows the resolution: one up/down-sampling block per octave."""

    name: str = "dcgan"
    z_dim: int = 100
    channels: int = 64  # width of the last hidden layer (ngf/ndf); doubles per octave down
    max_channels: int = 512
    spectral_norm: bool = False  # on D
    d_batchnorm: bool = False  # off by default: batch norm in D breaks gradient penalties

    def __post_init__(self) -> None:
        require(self.z_dim > 0, "model.z_dim", self.z_dim, "a positive latent size")
        require(self.channels > 0, "model.channels", self.channels, "a positive width")
        require(self.max_channels >= self.channels, "model.max_channels", self.max_channels,
                f"at least model.channels={self.channels}")


# ---------------------------------------------------------------- objectives
@dataclass
class LossConfig:
    """The adversarial loss and the tricks that act on it."""

    name: str = "ns"
    real_label: float = 1.0  # one-sided label smoothing: 0.9 as in Salimans et al. 2016
    clip: float = 0.01  # WGAN critic weight clipping to [-clip, clip]
    instance_noise_std: float = 0.0  # std of Gaussian noise added to every D input at kimg 0
    instance_noise_kimg: float = 100.0  # the noise decays linearly to 0 over this many kimg

    def __post_init__(self) -> None:
        require(0.5 < self.real_label <= 1.0, "loss.real_label", self.real_label,
                "a target in (0.5, 1], e.g. 0.9 for one-sided label smoothing")
        require(self.clip > 0, "loss.clip", self.clip, "a positive clipping bound")
        require(self.instance_noise_std >= 0, "loss.instance_noise_std",
                self.instance_noise_std, "a non-negative std")
        require(self.instance_noise_kimg > 0, "loss.instance_noise_kimg",
                self.instance_noise_kimg, "a positive duration in kimg")


@dataclass
class RegularizerConfig:
    """One penalty term; ``every`` > 1 applies it lazily (StyleGAN2), scaled by ``every``."""

    weight: float = 10.0
    every: int = 1

    def __post_init__(self) -> None:
        require(self.weight >= 0, "regularizer.weight", self.weight, "a non-negative weight")
        require(self.every >= 1, "regularizer.every", self.every, "an interval of at least 1")


# ---------------------------------------------------------------- augment
@dataclass
class AugmentConfig:
    """What D sees: ``none`` here; ADA and DiffAugment add their options."""

    name: str = "none"


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


# ---------------------------------------------------------------- metrics
@dataclass
class MetricsConfig:
    """Evaluation of the EMA generator: during training every ``every_kimg``, and by gan-eval.

    ``num_fakes`` is the cheap periodic proxy (e.g. 10k); ``final_num_fakes`` (e.g. 50k, the
    papers' count) is used once at the end of training. Real features come from the whole
    ``real_split`` of the training dataset (no subset, no flips) and are cached on disk.
    """

    names: list[str] = field(default_factory=list)  # registered metrics, as gan-eval --help lists
    every_kimg: float = 0.0  # 0 disables periodic evaluation
    features: str = "auto"  # auto | inception | fmnist | toy
    num_fakes: int = 10_000
    final_num_fakes: int | None = None  # null: no separate final evaluation
    num_reals: int | None = None  # null: the whole split
    real_split: str = "train"
    # Inception's input resize: tf_bilinear (TF1 / torch-fidelity), clean (PIL bicubic, as
    # clean-fid) or torch_bilinear (pytorch-fid); checked against the table in inception.py
    resize: str = "tf_bilinear"
    inception_weights: str | None = None
    cache_dir: str | None = None  # real-feature cache; null: $GAN_RUNNER_CACHE or ~/.cache
    best: str = ""  # keep the checkpoint with the best value of this metric (e.g. fid)
    psi: float = 1.0
    batch_size: int = 250
    seed: int = 0  # latents of the fakes: the same images at every evaluation
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    pr_k: int = 3
    dc_k: int = 5

    def __post_init__(self) -> None:
        # Looked up here rather than imported at the top: the metrics package imports this
        # module (the evaluator takes a MetricsConfig), and configs are only checked at run
        # time, when the package and so the registry are complete.
        from gan_runner.metrics.base import METRICS, rankable_keys, registered

        for name in self.names:
            require(name in METRICS, "metrics.names", list(self.names),
                    "names from " + ", ".join(metric.name for metric in registered()))
        require(self.every_kimg >= 0, "metrics.every_kimg", self.every_kimg,
                "a non-negative interval in kimg (0 = off)")
        require_choice("metrics.features", self.features, ("auto", "inception", "fmnist", "toy"))
        require_choice("metrics.real_split", self.real_split, ("train", "test"))
        for key in ("num_fakes", "batch_size", "kid_subsets", "is_splits", "pr_k", "dc_k"):
            value = getattr(self, key)
            require(value > 0, f"metrics.{key}", value, "a positive count")
        require(self.kid_subset_size >= 2, "metrics.kid_subset_size", self.kid_subset_size,
                "at least 2")
        for key in ("final_num_fakes", "num_reals"):
            value = getattr(self, key)
            require(value is None or value > 1, f"metrics.{key}", value, "a count > 1 or null")
        rankable = rankable_keys()
        require(self.best in ("", *rankable), "metrics.best", self.best,
                "empty or one of " + ", ".join(rankable))


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
