"""Time the training step: our loop against a hand-written one, and each speed option.

Run from the repository root with the project installed::

    python scripts/bench_step.py                  # CPU: DCGAN and tiny StyleGAN2 at 32x32
    python scripts/bench_step.py --quick          # a smoke run (few iterations)
    python scripts/bench_step.py --resolutions 64 128 --models dcgan stylegan2   # on a GPU

Every number is measured in the same run, in interleaved rounds (each configuration once per
round, the median over rounds), so a neighbour process slowing the machine down slows every
configuration alike and the ratios stay meaningful.

Rows:
- ``hand-written``: the minimal PyTorch loop a user would write for the same model, loss
  (non-saturating), batch, Adam settings and EMA, reading the same preloaded images. It is the
  baseline of the framework-cost ratio (target: ours within 5%, ratio <= 1.05).
- ``ours``: ``Trainer.iteration()`` with the same config (timing view on, as by default).
- ``ours +R1+PL``: StyleGAN2's lazy R1 (every 16) and path length (every 4), then the speed
  options one at a time: streams off / on, channels_last, bf16, compile, and on CUDA tf32 and
  fp16 (TensorFloat-32 and fp16's scaler exist only there) - each relative to its own
  streams-off fp32 row. Options that cannot run on this device are listed as
  skipped with the reason, not silently dropped.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
import torch.nn.functional as F
from rich.table import Table

from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.io.terminal import console_for
from gan_runner.io.timeline import timeline_table
from gan_runner.train.ema import ema_beta, update_ema
from gan_runner.train.loop import Trainer

BASE = ["metrics=none", "trainer.progress=false", "trainer.resume=null", "trainer.kimg=1000",
        "dataset.max_images=2048"]
MODEL_ARGS = {"dcgan": ["model=dcgan"], "stylegan2": ["model=stylegan2"],
              "stylegan2_tiny": ["model=stylegan2_tiny"]}
LAZY_REGS = "regularizer=[r1,path_length]"


@dataclass
class Case:
    label: str
    step: Callable[[], None]
    images_per_step: int
    baseline: str | None  # label of the row this one is compared with
    sync: Callable[[], None]
    trainer: Trainer | None = None


def trainer_for(overrides: list[str], run_dir: Path) -> Trainer:
    cfg = compose_config(overrides)
    return Trainer(validated(cfg), run_dir, as_dict(cfg))


def hand_written(trainer: Trainer) -> Callable[[], None]:
    """The same G, D, optimizers, batch and EMA as ``trainer``, in twenty plain lines."""
    G, D = copy.deepcopy(trainer.state.G), copy.deepcopy(trainer.state.D)
    G_ema = copy.deepcopy(G).requires_grad_(False)
    opt_cfg, batch = trainer.cfg.optimizer, trainer.cfg.trainer.batch_size
    opt_G = torch.optim.Adam(G.parameters(), opt_cfg.g_lr, tuple(opt_cfg.g_betas))
    opt_D = torch.optim.Adam(D.parameters(), opt_cfg.d_lr, tuple(opt_cfg.d_betas))
    data, device = trainer.data, trainer.device
    nimg = [0]

    def step() -> None:
        real = data.batch(torch.randint(len(data), (batch,))).to(device)
        z = torch.randn(batch, G.z_dim).to(device)
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G(z)
        d_loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_D.step()
        G.requires_grad_(True)
        D.requires_grad_(False)
        g_loss = F.softplus(-D(G(torch.randn(batch, G.z_dim).to(device)))).mean()
        opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_G.step()
        nimg[0] += batch
        update_ema(G_ema, G, ema_beta(batch, nimg[0], 10.0, 0.05))

    return step


def cases_for(model: str, resolution: int, batch: int, device: str, tmp: Path,
              skipped: list[str]) -> list[Case]:
    common = [*BASE, *MODEL_ARGS[model], f"dataset.resolution={resolution}",
              f"trainer.batch_size={batch}", f"trainer.device={device}"]
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    name = f"{model} {resolution}px"
    cases: list[Case] = []

    def add(label: str, overrides: list[str], baseline: str | None) -> Trainer | None:
        try:
            trainer = trainer_for([*common, *overrides], tmp / f"{name}-{len(cases)}")
            trainer.iteration()  # warm-up (and compilation, for compile=true)
        except Exception as error:  # an option this device cannot run: say so
            skipped.append(f"{name} {label}: {str(error).splitlines()[0][:120]}")
            return None
        cases.append(Case(f"{name} {label}", trainer.iteration, batch, baseline and
                          f"{name} {baseline}", sync, trainer))
        return trainer

    plain = add("ours", ["trainer.streams=off"], "hand-written")
    if plain is not None:
        hand = hand_written(plain)
        hand()
        cases.insert(0, Case(f"{name} hand-written", hand, batch, None, sync))
    add("ours +R1+PL streams=off" if "stylegan" in model else "ours +R1 streams=off",
        [LAZY_REGS if "stylegan" in model else "regularizer=r1", "trainer.streams=off"], None)
    regs = [LAZY_REGS if "stylegan" in model else "regularizer=r1"]
    reference = cases[-1].label.removeprefix(f"{name} ")
    options = {"streams=2": ["trainer.streams=2"], "channels_last": ["trainer.channels_last=true"],
               "bf16": ["trainer.precision=bf16"], "compile": ["trainer.compile=true"]}
    if cuda:
        options["tf32"] = ["trainer.tf32=true"]
        options["fp16"] = ["trainer.precision=fp16"]
    for label, overrides in options.items():
        off = [] if label == "streams=2" else ["trainer.streams=off"]
        add(f"+{label}", [*regs, *off, *overrides], reference)
    return cases


def measure(cases: list[Case], steps: int, rounds: int) -> dict[str, float]:
    """Median seconds per step of each case over interleaved rounds."""
    samples: dict[str, list[float]] = {case.label: [] for case in cases}
    for _ in range(rounds):
        for case in cases:
            case.sync()
            start = time.perf_counter()
            for _ in range(steps):
                case.step()
            case.sync()
            samples[case.label].append((time.perf_counter() - start) / steps)
    return {label: statistics.median(values) for label, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["dcgan", "stylegan2_tiny"],
                        choices=sorted(MODEL_ARGS))
    parser.add_argument("--resolutions", nargs="+", type=int, default=[32])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="2 steps x 2 rounds, smoke test")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 2, 2
    device_name = (torch.cuda.get_device_name() if args.device == "cuda"
                   else f"CPU, {torch.get_num_threads()} threads")
    skipped: list[str] = []
    with TemporaryDirectory() as tmp:
        cases = [case for model in args.models for resolution in args.resolutions
                 for case in cases_for(model, resolution, args.batch, args.device, Path(tmp),
                                       skipped)]
        seconds = measure(cases, args.steps, args.rounds)
        timeline_source = next((c for c in reversed(cases) if "streams=2" in c.label), None)
        timeline = None
        if timeline_source is not None and timeline_source.trainer is not None:
            scheduler = timeline_source.trainer.scheduler
            scheduler.timings()
            for _ in range(3):
                timeline_source.step()
            timeline = timeline_table(scheduler.timings(),
                                      f"{timeline_source.label}: step timeline")
    table = Table(title=f"training step, batch {args.batch}, {device_name} "
                        f"(median of {args.rounds} rounds x {args.steps} steps)")
    for column in ("configuration", "ms/step", "images/s", "sec/kimg", "ratio", "vs"):
        table.add_column(column, justify="left" if column in ("configuration", "vs") else "right")
    for case in cases:
        s = seconds[case.label]
        ratio, versus = "", ""
        if case.baseline in seconds:
            ratio, versus = f"{s / seconds[case.baseline]:.3f}", case.baseline
        table.add_row(case.label, f"{s * 1000:.1f}", f"{case.images_per_step / s:.0f}",
                      f"{s / case.images_per_step * 1000:.2f}", ratio, versus)
    console = console_for(*(r for r in (table, timeline) if r is not None))
    console.print(table)
    console.print("ratio = time / baseline time: below 1 is faster; 'ours' vs 'hand-written' "
                  "is the framework's cost (target <= 1.05)")
    if timeline is not None:
        console.print(timeline)
    for line in skipped:
        console.print(f"skipped: {line}")


if __name__ == "__main__":
    main()
