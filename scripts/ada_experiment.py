"""Limited data: Fashion-MNIST cut to 1,000 training images, trained with augment=none, fixed, ada.

    python scripts/ada_experiment.py                        # docs/ada_limited_data.md
    python scripts/ada_experiment.py trainer.kimg=4 --out outputs/ada_timing   # sec/kimg first

The three jobs share model, loss, seed, data subset and kimg budget; only the augmentation
differs. Each is a `gan-train` process (the real CLI, one thread) in OUT/<mode>, run in turn
or ``--jobs N`` at a time; running the same command again skips finished jobs and resumes
unfinished ones (trainer.resume=auto). FID/KID (the default metrics: Fashion-MNIST classifier
features) are computed against the whole 10k test split, so they never see the training
subset, and ``dataset.heldout`` keeps 1,000 other training-split images for the r_v diagnostic.

Outputs: OUT/results.json (every evaluation and the end of each run), OUT/results.md (the
tables), OUT/ada_experiment.png (FID, r_v, r_t and p vs kimg for the three runs) and
OUT/samples.png (each run's last sample grid).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from PIL import Image

from gan_runner.cli.jobs import finished, gan_train
from gan_runner.presentation.plots import captioned, line_chart, panels, save_panels
from gan_runner.storage.runlog import read_rows

# A D that can overfit 1,000 images within a CPU budget (D's learning rate 4x G's); the numbers
# behind these settings are in docs/ada_limited_data.md.
BASE: dict[str, Any] = {
    "dataset.max_images": 1000,
    "dataset.heldout": 1000,
    "model.channels": 32,
    "optimizer.d_lr": 8e-4,
    "trainer.batch_size": 16,
    "trainer.kimg": 200,
    "trainer.log_every_kimg": 2,
    "trainer.snapshot_every_kimg": 10,
    "trainer.seed": 0,
    "trainer.progress": "false",
    "metrics.every_kimg": 10,
    "metrics.real_split": "test",
    "metrics.num_fakes": 5000,
}
FIXED_P = 0.3
# The paper's ada_kimg=500 is written for runs of 25,000 kimg: scaled to this run's length.
ADA_KIMG = 20.0
MODES = ("none", "fixed", "ada")
TAIL_KIMG = 10.0  # r_t and r_v are noisy: the end of a run is the median of its last 10 kimg
# r_v divides by E[D(train)] - E[D(generated)], which passes through 0 whenever D scores both
# alike: the chart leaves out the values beyond this range rather than squash the others
RV_SHOWN = (-1.0, 2.0)


def mode_overrides(mode: str, fixed_p: float, ada_kimg: float) -> dict[str, Any]:
    return {"none": {"augment": "none"},
            "fixed": {"augment": "fixed", "augment.p": fixed_p},
            "ada": {"augment": "ada", "augment.ada_kimg": ada_kimg}}[mode]


def run_job(job: Path, settings: dict[str, Any]) -> None:
    """One gan-train process; its wall and CPU seconds add up in job/cost.json over resumes."""
    command = [gan_train(), *(f"{k}={v}" for k, v in settings.items()), f"hydra.run.dir={job}"]
    print("$", " ".join(command), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    # wait4 gives this child's own CPU time, which getrusage(RUSAGE_CHILDREN) cannot once
    # several jobs run side by side
    _, wait_status, usage = os.wait4(process.pid, 0)
    status = os.waitstatus_to_exitcode(wait_status)
    cost_file = job / "cost.json"
    cost = json.loads(cost_file.read_text()) if cost_file.exists() else {"wall_s": 0, "cpu_s": 0}
    cost["wall_s"] += time.perf_counter() - start
    cost["cpu_s"] += usage.ru_utime + usage.ru_stime
    job.mkdir(parents=True, exist_ok=True)
    cost_file.write_text(json.dumps(cost, indent=2))
    if status != 0:
        raise SystemExit(f"{job.name}: gan-train exited with status {status}; run the same "
                         "command again to resume")


def latest_rows(job: Path) -> list[dict[str, Any]]:
    """metrics.jsonl with one row per (kind, kimg): a resumed run logs again what it had
    logged after its checkpoint, and the later row is the one its weights continued from."""
    rows: dict[tuple[str, float], dict[str, Any]] = {}
    for row in read_rows(job / "metrics.jsonl"):
        rows[row["kind"], row["kimg"]] = row
    return sorted(rows.values(), key=lambda r: r["kimg"])


def series(rows: list[dict[str, Any]], kind: str, key: str) -> list[tuple[float, float]]:
    return [(r["kimg"], r[key]) for r in rows if r["kind"] == kind and r.get(key) is not None]


def tail_median(points: list[tuple[float, float]], window: float) -> float | None:
    if not points:
        return None
    end = points[-1][0]
    return statistics.median(y for x, y in points if x > end - window)


def job_result(job: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    rows = latest_rows(job)
    evals = [{k: r[k] for k in ("kimg", "fid", "kid", "kid_std")} for r in rows
             if r["kind"] == "eval"]
    train = {name: series(rows, "train", key) for name, key in
             (("p", "augment/p"), ("rt", "D/real_sign"), ("rv", "augment/rv"),
              ("d_accuracy", "D/accuracy"))}
    if not train["rt"]:  # runs from before D/real_sign was logged: ADA's own r_t only
        train["rt"] = series(rows, "train", "augment/rt")
    best = min(evals, key=lambda e: e["fid"])
    cost_file = job / "cost.json"
    config_file = job / ".hydra" / "config.yaml"  # the run's resolved config
    return {
        "overrides": overrides, "evals": evals, "train": train,
        "ada_target": (OmegaConf.select(OmegaConf.load(config_file), "augment.target")
                       if config_file.exists() else None),
        "final": {"kimg": evals[-1]["kimg"], "fid": evals[-1]["fid"], "kid": evals[-1]["kid"],
                  "best_fid": best["fid"], "best_kimg": best["kimg"],
                  **{name: tail_median(points, TAIL_KIMG) for name, points in train.items()}},
        "cost": json.loads(cost_file.read_text()) if cost_file.exists() else None,
        "real_data": next(r["real_data"] for r in rows if r["kind"] == "eval"),
    }


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(results: dict[str, dict[str, Any]], labels: dict[str, str]) -> str:
    """The per-checkpoint FID/KID table and the end-of-run table."""
    modes = list(results)
    kimgs = sorted({e["kimg"] for r in results.values() for e in r["evals"]})
    at = {m: {e["kimg"]: e for e in results[m]["evals"]} for m in modes}
    lines = ["| kimg | " + " | ".join(f"FID {labels[m]}" for m in modes) + " | "
             + " | ".join(f"KID {labels[m]}" for m in modes) + " |",
             "|---:|" + "---:|" * 2 * len(modes)]
    for kimg in kimgs:
        cells = [_number(at[m].get(kimg, {}).get(metric), 2)
                 for metric in ("fid", "kid") for m in modes]
        lines.append(f"| {kimg:g} | " + " | ".join(cells) + " |")
    lines += ["", f"End of run (p, r_t, r_v, D accuracy: median over the last {TAIL_KIMG:g} kimg):",
              "", "| run | final FID | best FID (kimg) | p | r_t | r_v | D acc. | CPU min | "
              "wall min |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, result in results.items():
        end, cost = result["final"], result["cost"] or {}
        minutes = [_number(cost[k] / 60 if k in cost else None, 1) for k in ("cpu_s", "wall_s")]
        lines.append(f"| {labels[mode]} | {end['fid']:.2f} | {end['best_fid']:.2f} "
                     f"({end['best_kimg']:g}) | {_number(end['p'], 3)} | {_number(end['rt'], 3)} "
                     f"| {_number(end['rv'], 3)} | {_number(end['d_accuracy'], 3)} | "
                     + " | ".join(minutes) + " |")
    return "\n".join(lines) + "\n"


def charts(results: dict[str, dict[str, Any]], labels: dict[str, str]) -> list[Image.Image]:
    """FID, r_v, r_t and p of every run, each run in the same colour on all four (a run
    without augmentation keeps its legend entry on the p chart, with no line)."""
    def per_run(key: str, keep: tuple[float, float] = (-math.inf, math.inf)
                ) -> dict[str, list[tuple[float, float | None]]]:
        return {labels[m]: [(x, y if keep[0] <= y <= keep[1] else None)
                            for x, y in r["train"][key]] for m, r in results.items()}

    fid = {labels[m]: [(e["kimg"], e["fid"]) for e in r["evals"]] for m, r in results.items()}
    rt = per_run("rt")
    target = results.get("ada", {}).get("ada_target")
    if target is not None:
        end = max(x for points in rt.values() for x, _ in points) if any(rt.values()) else 0.0
        rt["ADA target"] = [(0.0, target), (end, target)]
    low, high = RV_SHOWN
    return [line_chart(fid, "FID vs the test split (classifier features)", "kimg", "FID"),
            line_chart(per_run("rv", RV_SHOWN),
                       f"r_v on the held-out images (shown in [{low:g}, {high:g}])", "kimg",
                       "r_v"),
            line_chart(rt, "r_t = E[sign D(real)] on D's (augmented) training images", "kimg",
                       "r_t"),
            line_chart(per_run("p"), "augmentation probability p", "kimg", "p")]


def last_grids(out: Path, modes: list[str], labels: dict[str, str]) -> Image.Image:
    pictures = []
    for mode in modes:
        grid = sorted((out / mode / "samples").glob("fakes_*kimg.png"))[-1]
        with Image.open(grid) as image:
            pictures.append(captioned(image, f"{labels[mode]}: {grid.stem.split('_')[1]}"))
    return panels(pictures, columns=len(pictures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="gan-train overrides for every job, e.g. trainer.kimg=4")
    parser.add_argument("--out", type=Path, default=Path("outputs/ada_experiment"))
    parser.add_argument("--modes", default=",".join(MODES), help="a subset of none,fixed,ada")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time (each one gan-train process on one thread)")
    parser.add_argument("--fixed-p", type=float, default=FIXED_P, help="p of augment=fixed")
    parser.add_argument("--ada-kimg", type=float, default=ADA_KIMG,
                        help="kimg for ADA's p to go from 0 to 1")
    args = parser.parse_args()
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        parser.error(f"--modes {args.modes}: unknown {', '.join(sorted(unknown))} "
                     f"(choose from {','.join(MODES)})")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: run at least one job at a time")
    malformed = [o for o in args.overrides if "=" not in o]
    if malformed:
        parser.error(f"{malformed[0]} is not a KEY=VALUE override")
    modes = [m for m in MODES if m in args.modes.split(",")]
    settings = {**BASE, **dict(o.split("=", 1) for o in args.overrides)}
    labels = {"none": "none", "fixed": f"fixed p={args.fixed_p:g}", "ada": "ada"}
    jobs = {mode: ((args.out / mode).resolve(),
                   {**settings, **mode_overrides(mode, args.fixed_p, args.ada_kimg)})
            for mode in modes}
    todo = []
    for mode, (job, overrides) in jobs.items():
        if finished(job, float(overrides["trainer.kimg"])):
            print(f"{mode}: finished, skipped", flush=True)
        else:
            todo.append((job, overrides))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(lambda todo_job: run_job(*todo_job), todo))
    results = {mode: job_result(job, overrides) for mode, (job, overrides) in jobs.items()}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(markdown(results, labels))
    save_panels(charts(results, labels), args.out / "ada_experiment.png", columns=2)
    last_grids(args.out, modes, labels).save(args.out / "samples.png")
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
