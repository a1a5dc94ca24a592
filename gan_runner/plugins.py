"""Imports every module that registers components, so registries are complete when used.

A new loss, model, dataset or augmentation is a module listed here plus one YAML file.
"""

from __future__ import annotations

import importlib

from gan_runner.augment.base import AUGMENTS
from gan_runner.data.datasets import DATASETS
from gan_runner.models.base import MODELS
from gan_runner.objectives.base import LOSSES, REGULARIZERS
from gan_runner.registry import Registry

# config group -> the registry whose entries carry that group's option schemas
SCHEMA_GROUPS: dict[str, Registry] = {
    "dataset": DATASETS,
    "model": MODELS,
    "augment": AUGMENTS,
    "regularizer": REGULARIZERS,
    "loss": LOSSES,
}

PLUGIN_MODULES = (
    "gan_runner.data.toy",
    "gan_runner.data.images",
    "gan_runner.models.mlp",
    "gan_runner.models.dcgan",
    "gan_runner.models.stylegan2",
    "gan_runner.augment.ada",
    "gan_runner.augment.diffaugment",
    "gan_runner.objectives.losses",
    "gan_runner.objectives.regularizers",
    "gan_runner.objectives.path_length",
)


def load_plugins() -> None:
    for module in PLUGIN_MODULES:
        importlib.import_module(module)
