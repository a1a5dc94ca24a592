"""Composing and validating a run config outside the command line (tests, notebooks, tools)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from gan_runner.config.schema import TrainConfig, unknown_setting
from gan_runner.config.store import register_configs
from gan_runner.core.errors import UserError


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The config ``gan-train OVERRIDES...`` would run with."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module("gan_runner.conf", version_base=None):
        return compose("train", overrides=list(overrides))


def _undeclared_keys(node: Any, prefix: str = "") -> list[str]:
    """Keys no schema declares: ``+key=value`` gets them past Hydra's struct check, and every
    component would then silently ignore them (a typo that changes nothing)."""
    if not isinstance(node, DictConfig):
        return []
    schema = OmegaConf.get_type(node)
    declared = ({f.name for f in dataclasses.fields(schema)}
                if dataclasses.is_dataclass(schema) else None)
    found = []
    for key in node:
        path = f"{prefix}{key}"
        if declared is not None and key not in declared:
            found.append(path)
        else:
            found += _undeclared_keys(node._get_node(key), f"{path}.")
    return found


def validated(cfg: DictConfig) -> TrainConfig:
    """Dataclass objects (running every ``__post_init__`` range check) from a composed config."""
    undeclared = _undeclared_keys(cfg)
    if undeclared:
        raise unknown_setting(undeclared[0])
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except UserError:
        raise
    except Exception as error:  # OmegaConf wraps exceptions raised in __post_init__
        for item in (error.__cause__, error.__context__):
            if isinstance(item, UserError):
                raise item from None
        raise


def as_dict(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data: stored in checkpoints, compared on resume."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
