"""Registers the run schema and every component's option schema in Hydra's ConfigStore.

Option files under ``conf/<group>/<name>.yaml`` start from ``/schema/<group>/<name>``, the
schema its registry entry declares, so each option is validated by its own dataclass. The two
ways of composing a config (``gan-train`` and ``config.compose``) call it; it reads the
registries that importing ``gan_runner`` filled.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from gan_runner.config.schema import TrainConfig
from gan_runner.core.registry import Registry

_stored = False


def register_configs() -> None:
    """Idempotent: Hydra's store outlives a composition, and tests compose many times."""
    global _stored
    if _stored:
        return
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, registry in Registry.config_groups().items():
        for entry in registry.entries():
            if entry.schema is not None:
                store.store(group=f"schema/{group}", name=entry.name, node=entry.schema)
    _stored = True

