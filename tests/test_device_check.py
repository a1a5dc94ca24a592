"""``scripts/device_check.sh --dry-run``: the GPU check's every step runs on the CPU at toy
sizes, so the script is known to work before a GPU machine is lent for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import needs_fmnist

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("tests", "bench", "train", "weights", "eval_16", "eval_48")


@pytest.mark.slow
@needs_fmnist
def test_the_dry_run_runs_every_step_and_writes_one_report(tmp_path):
    done = subprocess.run(["bash", "scripts/device_check.sh", "--dry-run", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Device check: CPU") and "**dry run**" in report
    for step in STEPS:
        assert f"| {step} | ok |" in report
    for section in ("## CUDA tests", "**targets", "## Default experiment", "img/s",
                    "random stand-ins"):
        assert section in report
    assert {p.name for p in tmp_path.iterdir()} == {"report.md", "logs.txt", "bench.md"}
