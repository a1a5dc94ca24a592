"""A run killed without warning (SIGKILL: no handler runs, no last checkpoint is saved) resumes
with the same command and ends exactly where an uninterrupted run ends (issue 6).

The run is killed twice: once at a seeded random moment after its first checkpoint, and, after
the first resume, once while a checkpoint is being written (its temporary file exists). The
third start runs to the end; an uninterrupted run of the same command goes alongside.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gan_runner.storage.checkpoint import checkpoint_path, list_checkpoints, load_checkpoint
from gan_runner.storage.runlog import read_rows

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SEED = 6  # of the first kill's moment
# 200 steps of the toy MLP, a checkpoint every 10 (3.8 MB: its write takes a few ms)
ARGS = ["experiment=toy_ring8", "metrics=none", "trainer.batch_size=32", "trainer.kimg=6.4",
        "trainer.log_every_kimg=0.16", "trainer.snapshot_every_kimg=0.32",
        "trainer.progress=false"]
FINAL = 6400
TIMING_KEYS = ("sec_per_kimg", "time/")  # wall-clock numbers: the only things runs may differ in
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # same math in every run


def start(run_dir: Path) -> subprocess.Popen:
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(BIN / "gan-train"), *ARGS, f"hydra.run.dir={run_dir}"],
                            cwd=run_dir.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr


def wait_until(condition: Callable[[], bool], process: subprocess.Popen,
               poll: float = 0.01) -> float:
    """Poll until ``condition`` holds while ``process`` runs; the time it first held."""
    deadline = time.monotonic() + 300
    while not condition():
        assert process.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline
        time.sleep(poll)
    return time.monotonic()


def kill(process: subprocess.Popen) -> None:
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def newest(run_dir: Path) -> int:
    """The image count of the newest complete checkpoint (0: none yet)."""
    found = list_checkpoints(run_dir / "checkpoints")
    return int(found[0].stem.split("-")[1]) if found else 0


def temporary_files(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    return sorted(folder.glob(".*.tmp")) if folder.is_dir() else []


@dataclass(frozen=True)
class Runs:
    uninterrupted: Path
    resumed: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("kill")
    uninterrupted, resumed = base / "uninterrupted" / "run", base / "resumed" / "run"
    reference = start(uninterrupted)
    victim = start(resumed)
    first = wait_until(lambda: newest(resumed) > 0, victim)
    second = wait_until(lambda: newest(resumed) > 320, victim)
    time.sleep(random.Random(SEED).uniform(0, 3 * (second - first)))
    kill(victim)
    left = set(temporary_files(resumed))  # when the kill landed mid-write
    victim = start(resumed)  # the same command: resume=auto
    wait_until(lambda: bool(set(temporary_files(resumed)) - left), victim, poll=0.0005)
    kill(victim)
    finish(start(resumed))
    finish(reference)
    return Runs(uninterrupted, resumed)


def assert_identical(a: Any, b: Any, where: str = "state") -> None:
    """Bit-identical nested checkpoint content: tensors, arrays, containers, plain values."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_the_killed_run_ends_bit_identical_to_the_uninterrupted_one(runs):
    final = [load_checkpoint(checkpoint_path(run / "checkpoints", FINAL))["state"]
             for run in (runs.uninterrupted, runs.resumed)]
    for part in ("G", "D", "G_ema", "opt_G", "opt_D"):  # the promise; then everything else
        assert_identical(final[0][part], final[1][part], part)
    assert_identical(*final)


def test_no_temporary_file_is_left_and_every_checkpoint_loads(runs):
    assert temporary_files(runs.resumed) == []
    kept = list_checkpoints(runs.resumed / "checkpoints")
    assert [p.name for p in kept] == [
        p.name for p in list_checkpoints(runs.uninterrupted / "checkpoints")]
    for path in kept:
        load_checkpoint(path)


def test_metrics_have_each_row_once_as_if_never_killed(runs):
    def rows(run: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if not k.startswith(TIMING_KEYS)}
                for row in read_rows(run / "metrics.jsonl")]

    assert rows(runs.resumed) == rows(runs.uninterrupted)
