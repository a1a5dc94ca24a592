"""Turn a toy-benchmark sweep into a table: modes covered, high-quality share, KL, wall time.

    gan-train -m experiment=toy_grid25 loss=ns,minimax,lsgan,wgan,wgan_gp,hinge,ragan \\
        hydra.sweep.dir=outputs/toy_losses
    python scripts/toy_table.py outputs/toy_losses

Each job's last ``eval`` row of ``metrics.jsonl`` gives the metrics (of the EMA generator);
``summary.json`` gives the swept choices and the wall time. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan_runner.io.runlog import read_rows


def job_row(job: Path) -> dict[str, str]:
    summary = json.loads((job / "summary.json").read_text())
    evals = [r for r in read_rows(job / "metrics.jsonl") if r["kind"] == "eval"]
    if not evals:
        raise SystemExit(f"{job} has no eval rows: run with metrics=toy")
    last = evals[-1]
    overrides = (job / ".hydra" / "overrides.yaml").read_text().splitlines()
    swept = ", ".join(line.removeprefix("- ") for line in overrides
                      if not line.startswith(("- hydra", "- experiment")))
    return {"run": swept or job.name, "modes": f"{last['modes']:.0f}",
            "HQ %": f"{100 * last['hq']:.1f}", "KL": f"{last['kl']:.3f}",
            "kimg": f"{last['kimg']:.0f}", "wall s": f"{summary['wall_seconds']:.0f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", type=Path, nargs="+", help="multirun folders")
    args = parser.parse_args()
    rows = [job_row(job) for sweep in args.sweeps
            for job in sorted(sweep.iterdir(), key=lambda p: (len(p.name), p.name))
            if (job / "summary.json").exists()]
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row[c] for c in columns) + " |")


if __name__ == "__main__":
    main()
