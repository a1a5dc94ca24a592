"""``gan-train`` as a child process, as the experiment scripts run it: where the command is, and
whether a run folder already holds a finished run (so a rerun of a script only reports)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


def gan_train() -> str:
    """The gan-train entry point installed next to this interpreter (else on PATH)."""
    found = shutil.which("gan-train", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        raise SystemExit("gan-train not found: install the project (pip install -e .)")
    return found


def finished(run_dir: Path, kimg: float) -> bool:
    """Reached its budget and ended normally (not stopped by a signal)."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return False
    summary = json.loads(summary_path.read_text())
    return summary["exit_status"] == 0 and round(summary["kimg"] * 1000) >= round(kimg * 1000)
