"""From a validated config to live components, through the registries."""

from __future__ import annotations

from torch import nn

from gan_runner.augment.base import AUGMENTS, DAugment
from gan_runner.config.schema import TrainConfig
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.data.datasets import DATASETS, RealData
from gan_runner.models.base import MODELS, GanPair, num_classes
from gan_runner.objectives.base import LOSSES, REGULARIZERS, AdversarialLoss, Regularizer
from gan_runner.train.phases import Conditional


def build_data(cfg: TrainConfig) -> RealData:
    return DATASETS.get(cfg.dataset.name)(cfg.dataset)


def build_models(cfg: TrainConfig, spec: DataSpec) -> GanPair:
    return MODELS.get(cfg.model.name)(cfg.model, spec, cfg.conditioning)


def build_loss(cfg: TrainConfig) -> AdversarialLoss:
    return LOSSES.get(cfg.loss.name)(cfg.loss)


def build_regularizers(cfg: TrainConfig) -> list[Regularizer]:
    return [REGULARIZERS.get(name)(name, reg_cfg) for name, reg_cfg in cfg.regularizer.items()]


def build_augment(cfg: TrainConfig, spec: DataSpec) -> DAugment:
    if cfg.augment.name != "none" and not spec.is_image:
        raise UserError(f"augment={cfg.augment.name} transforms images, and this dataset is "
                        "2-D points", "use augment=none with the toy_* datasets")
    return AUGMENTS.get(cfg.augment.name)(cfg.augment, cfg.trainer.batch_size)


def build_conditional(cfg: TrainConfig, G: nn.Module) -> Conditional | None:
    """What the phases must know of a conditional G and D (None: a plain GAN)."""
    classes, codes = num_classes(G), getattr(G, "codes", None)
    if not classes and codes is None:
        return None
    cond = cfg.conditioning
    return Conditional(labelled=classes > 0, num_classes=classes,
                       acgan_weight=cond.acgan_weight if cond.d == "acgan" else None,
                       acgan_fakes=cond.acgan_fakes, codes=codes, info_weight=cond.info_weight)
