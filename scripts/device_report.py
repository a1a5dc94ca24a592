"""The Markdown report of ``scripts/device_check.sh``, from the folder its steps wrote.

``python scripts/device_report.py WORK REPORT.md --device cuda --weights FILE --data DIR``

``WORK`` holds ``steps.tsv`` (name, status, milliseconds per step), each step's ``NAME.log``,
the benchmark's ``bench.md`` / ``bench_compile.md``, the training run ``train/`` and the two
``gan-eval`` runs ``eval_N/results.json``. Missing pieces (a step that failed) are reported as
missing, so the report is written whatever happened.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch

from gan_runner.storage.runlog import read_rows

CPU_REFERENCE = "FID 96.95 at 100 kimg, 4.85 s/kimg on the 2-core development CPU (README)"


def device_name(device: str) -> str:
    if device == "cuda":
        cuda = torch.version.cuda
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {cuda})"
    return (f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
            f"threads (torch {torch.__version__})")


def steps(work: Path) -> list[tuple[str, str, float]]:
    rows = [line.split("\t") for line in (work / "steps.tsv").read_text().splitlines() if line]
    return [(name, status, int(ms) / 1000) for name, status, ms in rows]


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def tests_section(work: Path) -> str:
    log = work / "tests.log"
    if not log.exists():
        return "not run"
    lines = log.read_text().splitlines()
    summary = next((line for line in reversed(lines) if re.search(r"passed|failed|error", line)),
                   "no pytest summary (see logs.txt)")
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return "\n".join([f"`{summary.strip('= ')}`", *(f"- {line}" for line in failures)])


def train_section(work: Path) -> str:
    run = work / "train"
    summary_file, metrics_file = run / "summary.json", run / "metrics.jsonl"
    if not summary_file.exists() or not metrics_file.exists():
        return "no finished run (see logs.txt)"
    summary = json.loads(summary_file.read_text())
    rows = read_rows(metrics_file)
    train = [row for row in rows if row["kind"] == "train"]
    evals = [row for row in rows if row["kind"] == "eval"]
    waits = [row["time/data_wait"] for row in train if "time/data_wait" in row]
    lines = [
        f"{summary['kimg']:g} kimg in {summary['wall_seconds']:.1f} s: "
        f"**{summary['sec_per_kimg']:.3f} s/kimg** with the evaluations, "
        f"{statistics.median(r['sec_per_kimg'] for r in train):.3f} s/kimg training alone "
        f"(median over log rows); data wait {statistics.median(waits):.3f} ms per batch "
        f"(median); {train[-1].get('skipped_updates', 0)} non-finite updates.",
        "",
        table(["kimg", "FID", "KID"],
              [[f"{r['kimg']:g}", f"{r.get('fid', float('nan')):.2f}",
                f"{r.get('kid', float('nan')):.4g}"] for r in evals]),
        "",
        f"Features: the Fashion-MNIST classifier shipped with the project. CPU reference: "
        f"{CPU_REFERENCE}; a GPU run is not bitwise the CPU's (other kernels), so expect "
        f"a nearby, not an equal, FID.",
    ]
    return "\n".join(lines)


def eval_section(work: Path, timings: dict[str, float], weights: Path) -> str:
    runs = sorted((int(p.name.removeprefix("eval_")), p) for p in work.glob("eval_*")
                  if (p / "results.json").exists())
    if len(runs) < 2:
        return "fewer than two finished gan-eval runs (see logs.txt)"
    rows, points = [], []
    for fakes, path in runs:
        results = json.loads((path / "results.json").read_text())
        seconds = timings[f"eval_{fakes}"]
        rows.append([str(fakes), str(results.get("num_reals", "?")), f"{seconds:.1f}",
                     f"{results.get('fid', float('nan')):.2f}"])
        points.append((fakes, seconds))
    (small, t_small), (large, t_large) = points[0], points[-1]
    rate = (large - small) / max(t_large - t_small, 1e-9)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.exists() else "missing"
    return "\n".join([
        table(["fakes", "reals", "seconds (whole command)", "FID"], rows), "",
        f"**Inception throughput: {rate:.0f} img/s** ({large - small} extra fakes in "
        f"{t_large - t_small:.1f} s more: start-up, weights and real features cancel out; "
        f"each fake is generated, resized to 299 px and passed through the network).", "",
        f"Weights: **random stand-ins** built on the machine "
        f"(`gan_runner.metrics.features.random_weights`, seed 0), sha256 `{sha}`: the real "
        f"FID weights cannot be downloaded there, so these FIDs compare with nothing; the "
        f"throughput is the real network's (same layers and shapes).",
    ])


def report(work: Path, device: str, weights: Path, data: Path, dry_run: bool) -> str:
    done = steps(work)
    timings = {name: seconds for name, _, seconds in done}
    mode = ("**dry run** on the CPU at toy sizes (compile left out): it shows the script works,"
            " not the GPU's numbers" if dry_run else "full run")
    sections = [
        f"# Device check: {device_name(device)}",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {mode}; "
        f"{sum(timings.values()):.0f} s in all; data {data}.",
        "## Steps",
        table(["step", "status", "seconds"], [[n, s, f"{t:.1f}"] for n, s, t in done]),
        "## CUDA tests", tests_section(work),
    ]
    for name, title in (("bench", "Training step"),
                        ("bench_compile", "Training step: compile and CUDA graphs")):
        if (work / f"{name}.md").exists():
            sections += [f"## {title} (scripts/bench_step.py)", (work / f"{name}.md").read_text()]
    sections += ["## Default experiment (DCGAN, Fashion-MNIST)", train_section(work),
                 "## gan-eval Inception throughput", eval_section(work, timings, weights)]
    return "\n\n".join(sections) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    args.out.write_text(report(args.work, args.device, args.weights, args.data, args.dry_run))


if __name__ == "__main__":
    main()
