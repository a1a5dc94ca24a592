"""Taking up a run from a checkpoint: which one, whether it fits, and loading it.

A checkpoint must match the run it resumes in the config sections of ``COMPATIBLE`` (None:
every key); the dataset may move (root) or change its subset, not its kind or shape.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, num_classes
from gan_runner.models.conditioning import CONDITIONINGS
from gan_runner.storage.checkpoint import list_checkpoints
from gan_runner.storage.run_checkpoint import RunCheckpoint, latest_run_checkpoint
from gan_runner.train import distributed
from gan_runner.train.state import TrainState

log = logging.getLogger(__name__)

COMPATIBLE = {"model": None, "dataset": ("name", "resolution", "channels"),
              "conditioning": None}
SCHEMAS = {"model": MODELS, "conditioning": CONDITIONINGS}  # sections compared key by key


def find_checkpoint(choice: str | None, folder: Path, device: torch.device
                    ) -> tuple[Path, RunCheckpoint] | None:
    """``trainer.resume``: None starts over, ``auto`` takes the run's newest readable
    checkpoint (none yet: a fresh start), anything else is a path."""
    if choice is None:
        return None
    if choice != "auto":
        path = Path(choice).expanduser()
        return path, RunCheckpoint.load(path, device)
    found = latest_run_checkpoint(folder, device)
    if found is None and list_checkpoints(folder):
        raise UserError(f"no checkpoint in {folder} can be read",
                        "pass trainer.resume=null to start over in this folder, or "
                        "trainer.resume=PATH")
    return found


def check_compatible(path: Path, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    """One line naming every option that differs between the checkpoint's run and this one.
    An option added since the checkpoint was written counts at its default, which is how
    that run behaved (``conditioning.acgan_fakes``, say), so an upgrade does not refuse it."""
    for section, keys in COMPATIBLE.items():
        if section not in theirs and ours.get(section, {}).get("name", "none") == "none":
            continue  # written before the section existed, by a run that did not use it
        stored = _with_defaults(section, theirs.get(section, {}))
        a, b = (_pick(c, keys) for c in (stored, ours.get(section, {})))
        if a != b:
            changed = ", ".join(f"{section}.{key}: {a.get(key)} in the checkpoint, "
                                f"{b.get(key)} now"
                                for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key))
            raise UserError(f"checkpoint {path} was trained with a different {section} config "
                            f"({changed})",
                            f"resume with the same {section} options, or start over with "
                            "trainer.resume=null or a new hydra.run.dir")


def check_classes(path: Path, theirs: DataSpec, ours: DataSpec, conditional: bool) -> None:
    """The classes a conditional G and D were built for cannot change under them (a plain
    run ignores the labels, which files from before labels do not record)."""
    if conditional and theirs.num_classes != ours.num_classes:
        raise UserError(f"checkpoint {path} was trained on {theirs.num_classes} classes and "
                        f"the data now has {ours.num_classes}",
                        "resume with the same dataset and dataset.labels, or start over with "
                        "trainer.resume=null or a new hydra.run.dir")


def resume(state: TrainState, found: tuple[Path, RunCheckpoint], config: dict[str, Any],
           spec: DataSpec, world: distributed.World, seed: int) -> Path:
    """Load ``found`` into ``state`` and every rank's random streams; returns its path."""
    path, checkpoint = found
    check_compatible(path, checkpoint.config, config)
    check_classes(path, checkpoint.spec, spec, num_classes(state.G) > 0)
    try:
        state.load_state_dict(checkpoint.state)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError,
            IndexError) as error:  # a verified file whose state is not this run's
        raise UserError(f"checkpoint {path} does not fit this run: {error}".splitlines()[0],
                        "start a new run or resume with the config it was trained with"
                        ) from error
    distributed.own_random_state(world, seed, state.nimg, checkpoint.rank_rng)
    log.info("resumed from %s at %.1f kimg", path, state.kimg)
    return path


def _with_defaults(section: str, stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with the fields its schema has gained since at their defaults; as stored
    when the schema is unknown (another version's component name, or a section without
    one): the comparison then names what differs."""
    registry = SCHEMAS.get(section)
    if registry is None or stored.get("name") not in registry:
        return stored
    schema = OmegaConf.structured(registry.entry(stored["name"]).schema)
    try:
        return OmegaConf.to_container(OmegaConf.merge(schema, stored))  # type: ignore[return-value]
    except OmegaConfBaseException:  # a value the schema no longer takes
        return stored


def _pick(section: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    return dict(section) if keys is None else {k: section.get(k) for k in keys}
