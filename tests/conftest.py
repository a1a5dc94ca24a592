"""Shared fixtures: composing configs like the CLI does, and tiny runs that finish in seconds."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.data.fashion_mnist import DEBIAN_ROOT

torch.set_num_threads(min(2, os.cpu_count() or 1))
# weights that torch.hub downloaded on this machine are reused by the metrics (issue 19): the
# tests, and the runs they start, must see none, or offline and download tests would pass
# for another reason
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="gan_runner-tests-torch-home-")

HAS_FMNIST = (DEBIAN_ROOT / "train-images-idx3-ubyte.gz").exists()
needs_fmnist = pytest.mark.skipif(not HAS_FMNIST, reason="Debian's dataset-fashion-mnist is "
                                  "not installed (make setup installs it)")

# small enough for a CPU test: a few steps of a narrow model
# (debug=fast: 4 steps of batch 16, a row and a checkpoint every 2, no metrics, no progress)
TINY_TOY = ["experiment=toy_ring8", "debug=fast", "trainer.batch_size=32", "trainer.kimg=0.128",
            "trainer.log_every_kimg=0.064", "trainer.snapshot_every_kimg=0.064",
            "model.hidden=32"]
TINY_FMNIST = ["debug=fast", "dataset.max_images=256", "model.channels=8"]


def assert_same(a: Any, b: Any, where: str = "state") -> None:
    """Equal nested payloads (checkpoint states), tensors bit for bit."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., object]:
    """``make_trainer(overrides, run_dir=None)`` -> a ready Trainer writing under tmp_path."""
    from gan_runner.train.loop import Trainer

    def build(overrides: list[str], run_dir: Path | None = None) -> Trainer:
        cfg = compose_config(overrides)
        return Trainer(validated(cfg), run_dir or tmp_path / "run", as_dict(cfg))

    return build
