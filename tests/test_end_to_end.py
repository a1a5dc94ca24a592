"""Slow end-to-end checks (``make test-slow``): real processes, a real wheel, a real sweep."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import TINY_FMNIST, TINY_TOY, needs_fmnist

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def gan_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "gan-train"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_the_wheel_ships_the_configs_and_the_entry_points(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, timeout=600)
    wheel = next(tmp_path.glob("gan_runner-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gan_runner/conf/train.yaml" in names
    assert "gan_runner/conf/loss/hinge.yaml" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for command in ("gan-train", "gan-eval", "gan-sample"):
        assert command in text


@needs_fmnist
def test_default_experiment_runs_from_another_directory(tmp_path):
    result = gan_train(*TINY_FMNIST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "outputs").glob("*/*"))  # outputs/DATE/TIME, as Hydra names it
    assert len(runs) == 1
    assert (runs[0] / "samples" / "reals.png").exists()
    assert (runs[0] / ".hydra" / "config.yaml").exists()


def test_a_multirun_sweeps_losses_into_numbered_jobs(tmp_path):
    result = gan_train("-m", "loss=ns,hinge", *TINY_TOY, "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summaries = [json.loads((tmp_path / "sweep" / str(i) / "summary.json").read_text())
                 for i in range(2)]
    assert [s["choices"]["loss"] for s in summaries] == ["ns", "hinge"]


def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes(tmp_path):
    args = [str(BIN / "gan-train"), *TINY_TOY, "trainer.kimg=50", "trainer.log_every_kimg=0.064",
            "trainer.snapshot_every_kimg=100", "hydra.run.dir=run"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGTERM" and summary["kimg"] < 50
    assert list((tmp_path / "run" / "checkpoints").glob("ckpt-*.pt"))
    resumed = gan_train(*args[1:], "trainer.kimg=1", cwd=tmp_path)  # shorter: just resume
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["resumed_from"]
