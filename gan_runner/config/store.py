"""Registers the run schema and every component's option schema in Hydra's ConfigStore.

Option files under ``conf/<group>/<name>.yaml`` start from ``/schema/<group>/<name>``, the
schema its registry entry declares, so each option is validated by its own dataclass.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from gan_runner.config.schema import TrainConfig
from gan_runner.plugins import SCHEMA_GROUPS, load_plugins

_stored = False


def register_configs() -> None:
    """Idempotent: entry points and tests may both call it."""
    global _stored
    if _stored:
        return
    load_plugins()
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, registry in SCHEMA_GROUPS.items():
        for entry in registry.entries():
            if entry.schema is not None:
                store.store(group=f"schema/{group}", name=entry.name, node=entry.schema)
    _stored = True
