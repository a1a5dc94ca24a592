"""A tiny StyleGAN2 against DCGAN on Fashion-MNIST at an equal wall-clock budget on a CPU.

    nice -n 10 python scripts/compare_models.py           # docs/stylegan2_vs_dcgan.md
    nice -n 10 python scripts/compare_models.py trainer.kimg=3 metrics.every_kimg=1.5 \\
        --out outputs/compare/timing                      # sec/kimg of both, for the budget

Both runs are `gan-train` processes started at the same moment, one torch thread each and
niced to at least 10, so that whatever else loads the machine slows them alike. Each run's
``trainer.kimg`` comes from a timing run made the same way, chosen so that both take about the
same wall-clock time; each gets four FID/KID evaluations (Fashion-MNIST classifier features,
5,000 fakes against the 60k train images). Overrides on the command line apply to both runs.

Runs live in fixed directories OUT/<model>, so running the same command again skips a finished
run and resumes an unfinished one (``trainer.resume=auto``). The Markdown table goes to stdout
and OUT/results.md, the last sample grids side by side to OUT/samples.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from PIL import Image

from gan_runner.cli.jobs import finished, gan_train
from gan_runner.config.compose import compose_config, validated
from gan_runner.core.spec import DataSpec
from gan_runner.presentation.plots import captioned, panels
from gan_runner.presentation.report.runs import Run, load_run
from gan_runner.train.build import build_models

NICE = 10
EVALUATIONS = 4
COMMON: dict[str, Any] = {
    "trainer.seed": 0,
    "trainer.progress": "false",
    "metrics.num_fakes": 5000,
}
# StyleGAN2's recipe (Karras et al. 2020): lazy R1 every 16 D steps, path length weight 2 every
# 4 G steps, style mixing 0.9 (model default), Adam 0.002 with betas (0, 0.99) (the repo's Adam
# defaults are DCGAN's, which would leave the 0.01-lr mapping network at 2e-6), and R1 gamma
# 0.01 as StyleGAN2-ADA's CIFAR-10 setting for 32x32 images.
STYLEGAN2: dict[str, Any] = {
    "model": "stylegan2_tiny",
    "regularizer": "[r1,path_length]",
    "regularizer.r1.weight": 0.01,
    "optimizer.g_lr": 0.002,
    "optimizer.d_lr": 0.002,
    "optimizer.g_betas": "[0,0.99]",
    "optimizer.d_betas": "[0,0.99]",
}
# Budgets that take the same wall clock side by side, from the timing run (the docstring's second
# command; its numbers are in docs/stylegan2_vs_dcgan.md).
BUDGET_KIMG = {"dcgan": 19.2, "stylegan2": 12.8}
MODELS: dict[str, dict[str, Any]] = {"dcgan": {"model": "dcgan"}, "stylegan2": STYLEGAN2}


def run_settings(name: str, extra: dict[str, str]) -> dict[str, Any]:
    """One run's overrides: evaluations and snapshots spread evenly over its budget, which a
    ``trainer.kimg`` on the command line replaces."""
    settings = {**COMMON, **MODELS[name], "trainer.kimg": BUDGET_KIMG[name], **extra}
    every = float(settings["trainer.kimg"]) / EVALUATIONS
    return {"metrics.every_kimg": every, "trainer.snapshot_every_kimg": every, **settings}


def _lower_priority() -> None:
    os.nice(max(0, NICE - os.nice(0)))


def launch(run_dir: Path, settings: dict[str, Any]) -> subprocess.Popen:
    """A gan-train process with one torch thread; its console output goes to console.log."""
    command = [gan_train(), *(f"{k}={v}" for k, v in settings.items()),
               f"hydra.run.dir={run_dir}"]
    print("$", " ".join(command), flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(run_dir / "console.log", "a", encoding="utf-8") as console:
        return subprocess.Popen(command, env=env, stdout=console, stderr=subprocess.STDOUT,
                                preexec_fn=_lower_priority)


def wait_all(processes: dict[str, subprocess.Popen]) -> dict[str, tuple[int, float]]:
    """Each run's exit status and wall seconds. Ctrl-C reaches the children too, which save a
    checkpoint and stop, so keep waiting for them instead of leaving them behind."""
    start, ended = time.perf_counter(), {}
    while len(ended) < len(processes):
        try:
            time.sleep(1)
        except KeyboardInterrupt:
            continue
        for name, process in processes.items():
            if name not in ended and process.poll() is not None:
                ended[name] = (process.returncode, time.perf_counter() - start)
    return ended


def add_wall_time(run_dir: Path, seconds: float) -> None:
    """Process wall time summed over resumes (summary.json holds only the last process's)."""
    path = run_dir / "wall.json"
    total = json.loads(path.read_text())["wall_s"] if path.is_file() else 0.0
    path.write_text(json.dumps({"wall_s": total + seconds}))


def run_concurrently(runs: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    """Start every unfinished run at once and wait for all of them."""
    processes = {name: launch(run_dir, settings) for name, (run_dir, settings) in runs.items()}
    ended = wait_all(processes)
    for name, (_, seconds) in ended.items():
        add_wall_time(runs[name][0], seconds)
    failed = [f"{name} (exit {status})" for name, (status, _) in ended.items() if status != 0]
    if failed:
        raise SystemExit(f"gan-train failed: {', '.join(failed)}; see console.log in the run "
                         "directory, and run the same command again to resume")


def parameter_counts(run_dir: Path) -> tuple[int, int]:
    """G and D parameters, rebuilt from the overrides the run recorded."""
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    cfg = validated(compose_config(overrides))
    side = cfg.dataset.resolution
    pair = build_models(cfg, DataSpec((cfg.dataset.channels, side, side)))
    return tuple(sum(p.numel() for p in net.parameters()) for net in (pair.G, pair.D))


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def table_row(name: str, run: Run, params: tuple[int, int], wall_s: float | None) -> list[str]:
    evals = run.kind("eval")
    train_speed = [row["sec_per_kimg"] for row in run.kind("train")]
    summary = run.summary or {}
    best = min(evals, key=lambda e: e["fid"]) if evals else None
    cells = [f"{e['fid']:.1f} / {e['kid']:.2f} ({e['kimg']:g} kimg)" for e in evals]
    return [name, f"{params[0] / 1e6:.2f}M / {params[1] / 1e6:.2f}M",
            f"{run.kimg:g}" if run.kimg is not None else "-", _minutes(wall_s),
            f"{statistics.median(train_speed):.2f}" if train_speed else "-",
            f"{summary['sec_per_kimg']:.2f}" if "sec_per_kimg" in summary else "-",
            *cells, *["-"] * (EVALUATIONS - len(cells)),
            f"{best['fid']:.1f} ({best['kimg']:g} kimg)" if best else "-"]


def markdown(rows: list[list[str]]) -> str:
    header = ["model", "params G / D", "kimg", "wall time", "s/kimg train", "s/kimg all",
              *(f"eval {i + 1}: FID / KID" for i in range(EVALUATIONS)), "best FID"]
    lines = ["| " + " | ".join(header) + " |",
             "|---|---:|---:|---:|---:|---:|" + "---|" * EVALUATIONS + "---:|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def last_grid_panel(runs: dict[str, Run]) -> Image.Image | None:
    pictures = [captioned(grid, f"{name}: {run.kimg:g} kimg") for name, run in runs.items()
                if (grid := run.last_grid()) is not None]
    return panels(pictures, columns=len(pictures)) if pictures else None


def report(out: Path, names: list[str]) -> str:
    """The table of the runs under ``out``, written to results.md; the grids to samples.png."""
    runs = {name: load_run(out / name, out) for name in names}
    rows = []
    for name, run in runs.items():
        wall_path = run.path / "wall.json"
        wall_s = json.loads(wall_path.read_text())["wall_s"] if wall_path.is_file() else None
        rows.append(table_row(name, run, parameter_counts(run.path), wall_s))
    text = markdown(rows)
    (out / "results.md").write_text(text)
    grids = last_grid_panel(runs)
    if grids is not None:
        grids.save(out / "samples.png")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="gan-train overrides for both runs, e.g. trainer.kimg=2")
    parser.add_argument("--out", type=Path, default=Path("outputs/compare"))
    args = parser.parse_args()
    malformed = [override for override in args.overrides if "=" not in override]
    if malformed:
        parser.error(f"{malformed[0]!r} is not an override: write KEY=VALUE, e.g. trainer.kimg=3")
    extra = dict(override.split("=", 1) for override in args.overrides)
    out = args.out.resolve()
    pending = {}
    for name in MODELS:
        settings = run_settings(name, extra)
        if finished(out / name, float(settings["trainer.kimg"])):
            print(f"{name}: finished, skipped", flush=True)
        else:
            pending[name] = (out / name, settings)
    if pending:
        run_concurrently(pending)
    print(report(out, list(MODELS)), end="")


if __name__ == "__main__":
    main()
