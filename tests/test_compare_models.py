"""scripts/compare_models.py: equal-budget settings, resumable runs and the comparison table."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conftest import needs_fmnist

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_models.py"


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(run_dir: Path, overrides: list[str], rows: list[dict],
             summary: dict | None = None) -> Path:
    """A run directory as gan-train leaves it, reduced to what the table reads."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {item}\n" for item in overrides))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    if summary is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def train_row(kimg: float, sec_per_kimg: float) -> dict:
    return {"kind": "train", "kimg": kimg, "sec_per_kimg": sec_per_kimg}


def eval_row(kimg: float, fid: float) -> dict:
    return {"kind": "eval", "kimg": kimg, "fid": fid, "kid": fid / 100}


def test_each_run_gets_four_evaluations_spread_over_its_own_budget(compare):
    for name in compare.MODELS:
        settings = compare.run_settings(name, {})
        assert settings["trainer.kimg"] == compare.BUDGET_KIMG[name]
        assert settings["metrics.every_kimg"] * 4 == settings["trainer.kimg"]


def test_a_command_line_budget_applies_to_both_runs_and_moves_their_evaluations(compare):
    for name in compare.MODELS:
        settings = compare.run_settings(name, {"trainer.kimg": "2"})
        assert settings["trainer.kimg"] == "2"
        assert settings["metrics.every_kimg"] == 0.5


def test_stylegan2_trains_with_its_papers_regularizers_and_optimizer(compare):
    settings = compare.run_settings("stylegan2", {})
    assert settings["model"] == "stylegan2_tiny"
    assert settings["regularizer"] == "[r1,path_length]"
    assert settings["optimizer.g_lr"] == settings["optimizer.d_lr"] == 0.002
    assert settings["optimizer.g_betas"] == settings["optimizer.d_betas"] == "[0,0.99]"


@pytest.mark.parametrize(("summary", "done"), [
    ({"kimg": 12.8, "exit_status": 0}, True),
    ({"kimg": 6.4, "exit_status": 0}, False),  # a larger budget than the run had
    ({"kimg": 6.4, "exit_status": 130}, False),  # stopped by Ctrl-C: resume it
    (None, False),  # killed, or never started
])
def test_only_a_run_that_reached_its_budget_is_skipped(compare, tmp_path, summary, done):
    if summary is not None:
        (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert compare.finished(tmp_path, 12.8) is done


def test_the_table_has_a_row_per_model_with_every_evaluation_and_the_best(compare, tmp_path):
    fake_run(tmp_path / "dcgan", ["model=dcgan"],
             [train_row(1, 30), eval_row(1, 300), train_row(2, 30), eval_row(2, 200)],
             {"kimg": 2.0, "sec_per_kimg": 33.0, "exit_status": 0})
    (tmp_path / "dcgan" / "wall.json").write_text(json.dumps({"wall_s": 90}))
    fake_run(tmp_path / "stylegan2", ["model=stylegan2_tiny", "regularizer=[r1,path_length]"],
             [train_row(1, 60), eval_row(1, 150), train_row(2, 60), eval_row(2, 180)])
    rows = compare.report(tmp_path, ["dcgan", "stylegan2"]).splitlines()[2:]
    dcgan, stylegan2 = (row.split(" | ") for row in rows)
    assert dcgan[1:6] == ["1.07M / 0.66M", "2", "1.5 min", "30.00", "33.00"]
    assert dcgan[6:8] == ["300.0 / 3.00 (1 kimg)", "200.0 / 2.00 (2 kimg)"]
    assert dcgan[8:] == ["-", "-", "200.0 (2 kimg) |"]
    # still running: no summary.json, no wall time yet; the best is not the last evaluation
    assert stylegan2[1:6] == ["0.52M / 0.57M", "2", "-", "60.00", "-"]
    assert stylegan2[-1] == "150.0 (1 kimg) |"
    assert (tmp_path / "results.md").read_text().splitlines()[2:] == rows


def test_an_override_without_a_value_is_refused_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "trainer.kimg", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "compare_models.py: error: 'trainer.kimg' is not an override: write KEY=VALUE, "
        "e.g. trainer.kimg=3")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@needs_fmnist
def test_both_models_train_side_by_side_and_a_rerun_skips_them(tmp_path):
    tiny = ["trainer.kimg=0.032", "trainer.batch_size=16", "trainer.log_every_kimg=0.016",
            "dataset.max_images=256", "trainer.grid_size=16", "metrics=none"]
    command = [sys.executable, str(SCRIPT), *tiny, "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert first.stdout.count("$ ") == 2
    assert [line.split(" | ")[:3] for line in first.stdout.splitlines()[-2:]] == [
        ["| dcgan", "1.07M / 0.66M", "0.032"], ["| stylegan2", "0.52M / 0.57M", "0.032"]]
    assert (tmp_path / "samples.png").is_file()
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "dcgan: finished, skipped" in again.stdout
    assert "stylegan2: finished, skipped" in again.stdout
    assert "$ " not in again.stdout
