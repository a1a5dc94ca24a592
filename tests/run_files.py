"""Run checkpoints for the sampling and export tests, built straight from a composed config:
the networks ``gan-train`` would build (conditional ones included), untrained, in the file
format it writes, without running the loop."""

from __future__ import annotations

from pathlib import Path

import torch

from gan_runner import __version__
from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.core.rng import capture_rng
from gan_runner.data.datasets import DATASETS
from gan_runner.storage.run_checkpoint import RunCheckpoint, build_networks


def write_run_checkpoint(overrides: list[str], path: Path, seed: int = 0) -> Path:
    """``path``: the checkpoint of a run of ``overrides`` at 0 kimg (G_ema = G)."""
    cfg = compose_config(overrides)
    run = validated(cfg)
    config = as_dict(cfg)
    spec = DATASETS.get(run.dataset.name)(run.dataset).spec
    torch.manual_seed(seed)
    pair = build_networks(config, spec, "the test's config")
    state = {"G": pair.G.state_dict(), "D": pair.D.state_dict(), "G_ema": pair.G.state_dict(),
             "counters": {"nimg": 0}, "rng": capture_rng()}
    path.parent.mkdir(parents=True, exist_ok=True)
    RunCheckpoint(config=config, spec=spec, state=state, version=__version__,
                  choices={}).save(path)
    return path
