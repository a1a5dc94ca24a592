"""The commands a user types: help, config printing, one-line errors, sampling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import TINY_TOY

BIN = Path(sys.executable).parent


def run(command: str, *args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_config_groups_from_any_directory(tmp_path):
    result = run("gan-train", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for group in ("dataset:", "model:", "loss:", "regularizer:", "augment:", "optimizer:"):
        assert group in result.stdout


def test_cfg_job_prints_the_composed_config(tmp_path):
    result = run("gan-train", "--cfg", "job", "loss=hinge", "trainer.kimg=5", cwd=tmp_path)
    assert result.returncode == 0
    assert "name: hinge" in result.stdout and "kimg: 5" in result.stdout


def test_train_then_sample_a_scatter_plot_of_points_in_one_process_each(tmp_path):
    assert run("gan-train", *TINY_TOY, "hydra.run.dir=run",
               cwd=tmp_path).returncode == 0
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-*.pt"))[-1]
    result = run("gan-sample", f"ckpt={ckpt}", "seeds=0-3", "out=points.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "points.png").size == (512, 512)
    result = run("gan-sample", f"ckpt={ckpt}", "psi=0.5", cwd=tmp_path)
    assert_one_line_error(result, "no truncation")


def test_sample_requires_a_checkpoint(tmp_path):
    assert_one_line_error(run("gan-sample", cwd=tmp_path), "missing ckpt=")
    assert_one_line_error(run("gan-sample", "ckpt=nothing.pt", cwd=tmp_path),
                          "cannot read checkpoint")
