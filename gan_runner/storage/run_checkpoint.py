"""A training run's checkpoint as one typed object: what it holds, checked when it is read.

The loop writes it, ``resume`` and the divergence restore read it back, and ``gan-sample``,
``gan-eval``, ``gan-export`` and the scripts rebuild networks from it; each of them goes
through ``RunCheckpoint`` instead of knowing the payload's keys. A file that verifies but
does not hold what gan-train writes (another program's payload, missing keys, wrong types)
is refused here with one line, before any of them touches it.

The data spec is stored as the shape (``spec``, as format 1 and the first format-2 files have
it) and, beside it, the labels (``classes``: their count, names and per-class counts); a file
without ``classes`` is of unlabelled data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from gan_runner.core.errors import UserError
from gan_runner.core.registry import Registry
from gan_runner.core.rng import numpy_state
from gan_runner.core.safe_load import first_line
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS, GanPair
from gan_runner.models.conditioning import CONDITIONINGS
from gan_runner.storage.checkpoint import FORMAT, latest_valid, read_checkpoint, save_checkpoint

FOREIGN_HINT = "pass a ckpt-*.pt file written by gan-train"
NETWORKS = ("G", "D", "G_ema")


def component_config(registry: Registry[Any], section: dict[str, Any]) -> Any:
    """A stored config section (plain dict) as its schema's dataclass, validated again: the
    file may come from another version or another person."""
    schema = registry.entry(section["name"]).schema
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), section))


@contextmanager
def built_from(source: str, what: str) -> Iterator[None]:
    """Whatever fails while building from a file's stored config is the file's fault (its
    values may come from another version or another person), so it is one line naming it."""
    try:
        yield
    except UserError as error:
        raise UserError(f"{source} describes {what} that cannot be built: {error}") from None
    except Exception as error:  # any builder's error on foreign values; bugs show in tests
        raise UserError(f"{source} describes {what} that cannot be built: "
                        f"{type(error).__name__}: {first_line(error)}",
                        "it may come from another gan_runner version") from None


def build_networks(config: dict[str, Any], spec: DataSpec, source: str) -> GanPair:
    """Untrained G and D as ``config['model']`` and ``config['conditioning']`` (absent in
    files from before conditioning: unconditional) describe them."""
    with built_from(source, "a model"):
        section = config.get("conditioning")
        conditioning = None if section is None else component_config(CONDITIONINGS, section)
        return MODELS.get(config["model"]["name"])(component_config(MODELS, config["model"]),
                                                   spec, conditioning)


def load_weights(module: nn.Module, weights: Any, what: str, source: str) -> nn.Module:
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise UserError(f"the {what} weights in {source} do not fit its model: "
                        f"{first_line(error)}", "the file was changed or not written by "
                        "gan_runner") from None
    return module


def _require(condition: bool, path: Path, what: str) -> None:
    if not condition:
        raise UserError(f"checkpoint {path} verifies but does not hold a gan-train run ({what})",
                        FOREIGN_HINT)


def _count(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def read_spec(shape: Any, classes: Any) -> DataSpec | None:
    """The spec stored as a shape and (newer files) the label facts, or None if it is not
    one: a wrong type, size or count anywhere."""
    ok = (isinstance(shape, list | tuple) and len(shape) in (1, 3)
          and all(_count(n, 1) for n in shape))
    if not ok:
        return None
    if classes is None:
        return DataSpec(tuple(shape))
    if not isinstance(classes, dict):
        return None
    k, names, counts = (classes.get(key) for key in ("num_classes", "class_names",
                                                      "class_counts"))
    ok = (_count(k) and isinstance(names, list | tuple) and isinstance(counts, list | tuple)
          and len(names) in (0, k) and all(isinstance(n, str) for n in names)
          and len(counts) in (0, k) and all(_count(n) for n in counts))
    return DataSpec(tuple(shape), k, tuple(names), tuple(counts)) if ok else None


def _spec(shape: Any, classes: Any, path: Path) -> DataSpec:
    _require(read_spec(shape, None) is not None, path, f"its data shape is {shape!r}")
    spec = read_spec(shape, classes)
    _require(spec is not None, path, f"its classes are {classes!r}")
    return spec  # type: ignore[return-value]


def _from_format_1(payload: dict[str, Any]) -> dict[str, Any]:
    """Format 1 kept NumPy's random state as an ndarray and no config choices."""
    def plain_rng(rng: dict[str, Any]) -> dict[str, Any]:
        return {**rng, "numpy": numpy_state(rng["numpy"])}

    state = {**payload["state"], "rng": plain_rng(payload["state"]["rng"])}
    rank_rng = payload.get("rank_rng")
    return {**payload, "state": state, "choices": {},
            "rank_rng": None if rank_rng is None else [plain_rng(r) for r in rank_rng]}


MIGRATIONS = {1: _from_format_1}  # format n -> n + 1, applied in turn up to FORMAT


@dataclass(frozen=True)
class RunCheckpoint:
    """Everything a run saved: the resolved config, the data spec (shape and classes), the
    training state (``TrainState.state_dict()``), every rank's random state, and what wrote
    it."""

    config: dict[str, Any]
    spec: DataSpec
    state: dict[str, Any]
    version: str  # of the gan_runner that wrote it
    choices: dict[str, str]  # the config group options the run was started with
    rank_rng: list[dict[str, Any]] | None = None
    format: int = FORMAT  # of the file it was read from
    source: str = "this run"  # the file it was read from, for messages

    @property
    def nimg(self) -> int:
        return self.state["counters"]["nimg"]

    @property
    def kimg(self) -> float:
        return self.nimg / 1000

    def payload(self) -> dict[str, Any]:
        return {"config": self.config, "spec": list(self.spec.shape),
                "classes": self.spec.label_facts(), "state": self.state,
                "rank_rng": self.rank_rng, "version": self.version, "choices": self.choices}

    def save(self, path: Path) -> None:
        save_checkpoint(self.payload(), path)

    @classmethod
    def load(cls, path: Path, map_location: str | torch.device = "cpu") -> RunCheckpoint:
        fmt, payload = read_checkpoint(path, map_location)
        _require(isinstance(payload, dict), path, f"its payload is a {type(payload).__name__}")
        missing = [k for k in ("config", "spec", "state", "version") if k not in payload]
        _require(not missing, path, f"no {', '.join(missing)}")
        config, state = payload["config"], payload["state"]
        _require(isinstance(config, dict) and all(
            isinstance(config.get(k), dict) and isinstance(config[k].get("name"), str)
            for k in ("model", "dataset")), path, "its config names no model and dataset")
        _require(isinstance(state, dict) and all(isinstance(state.get(k), dict)
                                                 for k in (*NETWORKS, "counters", "rng")),
                 path, "its state lacks the networks, counters or random state")
        nimg = state["counters"].get("nimg")
        _require(isinstance(nimg, int) and nimg >= 0, path, f"its image count is {nimg!r}")
        rank_rng = payload.get("rank_rng")
        _require(rank_rng is None or (isinstance(rank_rng, list) and all(
            isinstance(r, dict) for r in rank_rng)), path, "its per-rank random states")
        try:
            for step in range(fmt, FORMAT):
                payload = MIGRATIONS[step](payload)
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"checkpoint {path} (format {fmt}) cannot be brought to format "
                            f"{FORMAT}: {first_line(error)}", FOREIGN_HINT) from None
        return cls(config=config, spec=_spec(payload["spec"], payload.get("classes"), path),
                   state=payload["state"],
                   version=str(payload["version"]), choices=dict(payload.get("choices") or {}),
                   rank_rng=payload.get("rank_rng"), format=fmt, source=f"checkpoint {path}")

    def networks(self) -> GanPair:
        """Untrained G and D of the model this run trained (the caller picks the weights)."""
        return build_networks(self.config, self.spec, self.source)

    def generator(self, device: torch.device | str = "cpu") -> nn.Module:
        """The EMA generator, in eval mode and frozen: what sampling and evaluation use."""
        G = load_weights(self.networks().G, self.state["G_ema"], "G_ema", self.source)
        return G.to(device).eval().requires_grad_(False)

    def discriminator(self, device: torch.device | str = "cpu") -> nn.Module:
        D = load_weights(self.networks().D, self.state["D"], "D", self.source)
        return D.to(device).eval()


def latest_run_checkpoint(folder: Path, map_location: str | torch.device = "cpu"
                          ) -> tuple[Path, RunCheckpoint] | None:
    return latest_valid(folder, lambda path: RunCheckpoint.load(path, map_location))
