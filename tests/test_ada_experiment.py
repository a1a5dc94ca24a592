"""scripts/ada_experiment.py: resumable jobs, its reading of the runs, and its report."""

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

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ada_experiment.py"


@pytest.fixture(scope="module")
def experiment() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ada_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def eval_row(kimg: float, fid: float) -> dict:
    return {"kind": "eval", "kimg": kimg, "fid": fid, "kid": fid / 10, "kid_std": 0.1,
            "real_data": "fashion_mnist, split=test"}


def train_row(kimg: float, **values: float) -> dict:
    return {"kind": "train", "kimg": kimg, "D/accuracy": 0.9, **values}


@pytest.mark.parametrize(("summary", "done"), [
    ({"kimg": 100.032, "exit_status": 0}, True),
    ({"kimg": 60.0, "exit_status": 0}, False),  # a longer budget than the finished run's
    ({"kimg": 40.0, "exit_status": 143}, False),  # stopped by SIGTERM: resume it
    (None, False),  # killed before the end, or never started
])
def test_only_a_run_that_reached_the_budget_counts_as_finished(experiment, tmp_path, summary,
                                                                done):
    if summary is not None:
        (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert experiment.finished(tmp_path, 100.0) is done


def test_a_resumed_runs_rows_replace_those_logged_after_its_checkpoint(experiment, tmp_path):
    write_rows(tmp_path / "metrics.jsonl", [
        train_row(2), eval_row(10, 50.0), train_row(12, **{"augment/rv": 0.1}),
        # killed at 13 kimg, resumed from the 10 kimg checkpoint:
        train_row(12, **{"augment/rv": 0.2}), eval_row(20, 40.0)])
    rows = experiment.latest_rows(tmp_path)
    assert [(r["kind"], r["kimg"]) for r in rows] == [
        ("train", 2), ("eval", 10), ("train", 12), ("eval", 20)]
    assert rows[2]["augment/rv"] == 0.2


def test_the_end_of_a_run_is_its_last_evaluation_and_the_median_of_its_last_rows(experiment,
                                                                              tmp_path):
    write_rows(tmp_path / "metrics.jsonl", [
        train_row(80, **{"augment/p": 0.1, "augment/rt": 0.2}), eval_row(80, 30.0),
        train_row(92, **{"augment/p": 0.4, "augment/rt": 0.5}),
        train_row(96, **{"augment/p": 0.5, "augment/rt": -900.0}),  # a spike
        train_row(100, **{"augment/p": 0.6, "augment/rt": 0.7}), eval_row(100, 35.0)])
    end = experiment.job_result(tmp_path, {})["final"]
    assert (end["fid"], end["best_fid"], end["best_kimg"]) == (35.0, 30.0, 80)
    assert end["p"] == 0.5 and end["rt"] == 0.5  # the rows after 90 kimg
    assert end["rv"] is None  # no held-out split


def test_the_table_has_a_row_per_checkpoint_and_a_column_per_run(experiment, tmp_path):
    results = {}
    for mode, fids in (("none", [40.0, 60.0]), ("ada", [35.0, 25.0])):
        job = tmp_path / mode
        job.mkdir()
        write_rows(job / "metrics.jsonl", [eval_row(50, fids[0]), eval_row(100, fids[1])])
        results[mode] = experiment.job_result(job, {})
    table = experiment.markdown(results, {"none": "none", "ada": "ada"})
    assert "| kimg | FID none | FID ada | KID none | KID ada |" in table
    assert "| 100 | 60.00 | 25.00 | 6.00 | 2.50 |" in table
    assert "| ada | 25.00 | 25.00 (100) | - | - | - | - | - | - |" in table


@pytest.mark.parametrize(("args", "message"), [
    (["--jobs", "0"], "--jobs 0: run at least one job at a time"),
    (["--modes", "ada,adaa"], "unknown adaa (choose from none,fixed,ada)"),
    (["trainer.kimg"], "trainer.kimg is not a KEY=VALUE override"),
])
def test_a_bad_argument_is_one_error_line_before_anything_runs(tmp_path, args, message):
    done = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())


@pytest.mark.slow
@needs_fmnist
def test_the_experiment_runs_three_jobs_side_by_side_and_a_second_call_only_reports(tmp_path):
    tiny = ["dataset.max_images=64", "dataset.heldout=32", "model.channels=8",
            "trainer.batch_size=16", "trainer.kimg=0.064", "trainer.log_every_kimg=0.032",
            "metrics.every_kimg=0.064", "metrics.num_fakes=1000", "metrics.num_reals=1000",
            "metrics.kid_subset_size=500", "trainer.grid_size=16"]
    command = [sys.executable, str(SCRIPT), *tiny, "--out", str(tmp_path), "--ada-kimg=1",
               "--jobs", "3"]
    env = {**os.environ, "GAN_RUNNER_CACHE": str(tmp_path / "cache")}
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results) == ["none", "fixed", "ada"]
    for mode, result in results.items():
        assert result["evals"][-1]["kimg"] == 0.064, mode
        assert "split=test" in result["real_data"]
        assert result["train"]["rv"], mode
        assert result["cost"]["cpu_s"] > 0, mode  # each process's own CPU time
    # whether p moves in four D steps depends on r_t, so this checks the wiring only (the
    # controller's arithmetic has its own tests): ADA logs a p in [0, p_max], fixed keeps 0.3
    assert not results["none"]["train"]["p"]
    ada_p = [p for _, p in results["ada"]["train"]["p"]]
    assert ada_p and all(0 <= p <= 0.8 for p in ada_p)
    assert results["fixed"]["final"]["p"] == 0.3
    for name in ("results.md", "ada_experiment.png", "samples.png"):
        assert (tmp_path / name).stat().st_size > 0
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished, skipped") == 3
    assert json.loads((tmp_path / "results.json").read_text()) == results
