"""Time the training step: our loop against a hand-written one, and each speed option.

Run from the repository root with the project installed::

    python scripts/bench_step.py                  # CPU: DCGAN and tiny StyleGAN2 at 32x32
    python scripts/bench_step.py --quick          # a smoke run (few iterations)
    python scripts/bench_step.py --resolutions 32 64 128 --models dcgan stylegan2 \\
        --markdown bench.md --profile             # on a GPU (scripts/device_check.sh does this)

Every number is measured in the same run, in interleaved rounds (each configuration once per
round, the median over rounds), so a neighbour process slowing the machine down slows every
configuration alike and the ratios stay meaningful.

Rows, per model and resolution:
- ``hand-written``: the minimal PyTorch loop a user would write for the same model, loss
  (non-saturating), batch, Adam settings and EMA, indexing the same images where our feed
  keeps them (on the GPU) and drawing its latents there. It is the baseline of the
  framework-cost ratio.
- ``ours``: ``Trainer.iteration()`` with the same config (timing view on, as by default).
- ``ours +sync per phase``: the same, with the host waiting for the device before every
  optimizer step, as the step's non-finite check (``if not torch.isfinite(loss)``) made it do
  before the guard moved onto the device. On the CPU there is nothing to wait for.
- ``ours +R1+PL``: StyleGAN2's lazy R1 (every 16) and path length (every 4), then the speed
  options one at a time: streams off / on, channels_last, bf16, compile, and on CUDA tf32, fp16
  and CUDA graphs (compile's reduce-overhead mode) - each relative to its own streams-off fp32
  row. Options that cannot run on this device are listed as skipped with the reason, not
  silently dropped.

Then the targets, each a ratio of two rows measured side by side: ours within 5% of the
hand-written loop; streams=2 at least 1.15x faster than streams off for StyleGAN2 + R1 + path
length at 64 px; the sync-free step at least 1.1x faster than the one with a sync per phase on
the smallest DCGAN. The goals are set for a GPU: on the CPU the ratios only show the noise.
With ``--profile`` a missed target's two rows are profiled (``torch.profiler``) and the
operators that took the most time are printed with it.
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
from gan_runner.data.feed import ResidentFeed
from gan_runner.presentation.terminal import console_for, markdown_table
from gan_runner.presentation.timeline import timeline_table
from gan_runner.train.ema import ema_beta, update_ema
from gan_runner.train.loop import Trainer

BASE = ["metrics=none", "trainer.progress=false", "trainer.resume=null", "trainer.kimg=1000",
        "dataset.max_images=2048"]
MODEL_ARGS = {"dcgan": ["model=dcgan"], "stylegan2": ["model=stylegan2"],
              "stylegan2_tiny": ["model=stylegan2_tiny"]}
LAZY_REGS = "regularizer=[r1,path_length]"
# label -> overrides, each on top of the +R1(+PL) streams-off row
OPTIONS = {"streams=2": ["trainer.streams=2"], "channels_last": ["trainer.channels_last=true"],
           "bf16": ["trainer.precision=bf16"], "compile": ["trainer.compile=true"],
           "tf32": ["trainer.tf32=true"], "fp16": ["trainer.precision=fp16"],
           "cuda_graphs": ["trainer.compile=true", "trainer.compile_mode=reduce-overhead"]}
CUDA_ONLY = ("tf32", "fp16", "cuda_graphs")  # TensorFloat-32, fp16's scaler, graphs: CUDA's
FRAMEWORK_COST, STREAMS_SPEEDUP, SYNC_FREE_SPEEDUP = 1.05, 1.15, 1.1
STREAMS_RESOLUTION = 64  # the streams target's resolution (the nearest measured stands in)
PROFILE_STEPS = 3


@dataclass
class Case:
    label: str
    step: Callable[[], None]
    images_per_step: int
    baseline: str | None  # label of the row this one is compared with
    sync: Callable[[], None]
    trainer: Trainer | None = None


@dataclass(frozen=True)
class Target:
    """``slow`` / ``fast`` time ratio of two rows against a goal (a speed-up or a cost)."""

    name: str
    fast: str  # the row that should be faster (or no slower than ``goal`` x ``slow``)
    slow: str
    goal: float
    is_cost: bool  # fast / slow <= goal, instead of slow / fast >= goal

    def value(self, seconds: dict[str, float]) -> float:
        fast, slow = seconds[self.fast], seconds[self.slow]
        return fast / slow if self.is_cost else slow / fast

    def met(self, seconds: dict[str, float]) -> bool:
        value = self.value(seconds)
        return value <= self.goal if self.is_cost else value >= self.goal

    def verdict(self, seconds: dict[str, float]) -> str:
        value = self.value(seconds)
        if self.met(seconds):
            return "met"
        return f"missed by {abs(value / self.goal - 1) * 100:.1f}%"


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
    device = trainer.device
    resident = isinstance(trainer.feed, ResidentFeed)  # then index the images on the device too
    data, where = (trainer.feed.data, device) if resident else (trainer.data, "cpu")
    nimg = [0]

    def step() -> None:
        real = data.batch(torch.randint(len(data), (batch,), device=where)).to(device)
        z = torch.randn(batch, G.z_dim, device=device)
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
        g_loss = F.softplus(-D(G(torch.randn(batch, G.z_dim, device=device)))).mean()
        opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_G.step()
        nimg[0] += batch
        update_ema(G_ema, G, ema_beta(batch, nimg[0], 10.0, 0.05))

    return step


def sync_per_phase(trainer: Trainer, sync: Callable[[], None]) -> None:
    """Make ``trainer`` wait for the device before each optimizer step, as it did when the
    non-finite check read the loss on the host (``if not torch.isfinite(loss)``)."""
    for optimizer in (trainer.state.opt_G, trainer.state.opt_D):
        optimizer.register_step_pre_hook(lambda *_: sync())


def cases_for(model: str, resolution: int, batch: int, device: str, options: list[str],
              overrides: list[str], tmp: Path, skipped: list[str]) -> list[Case]:
    common = [*BASE, *MODEL_ARGS[model], f"dataset.resolution={resolution}",
              f"trainer.batch_size={batch}", f"trainer.device={device}", *overrides]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
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
    syncing = add("ours +sync per phase", ["trainer.streams=off"], "ours")
    if syncing is not None:
        sync_per_phase(syncing, sync)
    regs = [LAZY_REGS if "stylegan" in model else "regularizer=r1"]
    reference = "ours +R1+PL streams=off" if "stylegan" in model else "ours +R1 streams=off"
    add(reference, [*regs, "trainer.streams=off"], None)
    for label in options:
        if label in CUDA_ONLY and device != "cuda":
            skipped.append(f"{name} +{label}: needs CUDA")
            continue
        off = [] if label == "streams=2" else ["trainer.streams=off"]
        add(f"+{label}", [*regs, *off, *OPTIONS[label]], reference)
    return cases


def targets_for(labels: set[str], models: list[str], resolutions: list[int]) -> list[Target]:
    """The issue's targets among the rows measured (the nearest resolution stands in)."""
    targets = [Target(f"framework cost, {model} {res}px", f"{model} {res}px ours",
                      f"{model} {res}px hand-written", FRAMEWORK_COST, is_cost=True)
               for model in models for res in resolutions]
    streams_res = min(resolutions, key=lambda r: abs(r - STREAMS_RESOLUTION))
    for model in (m for m in models if "stylegan" in m):
        row = f"{model} {streams_res}px"
        targets.append(Target(f"streams=2 vs off, {model} +R1+PL {streams_res}px",
                              f"{row} +streams=2", f"{row} ours +R1+PL streams=off",
                              STREAMS_SPEEDUP, is_cost=False))
    small = next((m for m in ("dcgan", "stylegan2_tiny", "stylegan2") if m in models), None)
    if small is not None:
        row = f"{small} {min(resolutions)}px"
        targets.append(Target(f"sync-free step vs a sync per phase, {row}", f"{row} ours",
                              f"{row} ours +sync per phase", SYNC_FREE_SPEEDUP, is_cost=False))
    return [t for t in targets if {t.fast, t.slow} <= labels]


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


def profile(case: Case, device: str) -> str:
    """The operators that took the most time over a few steps of ``case``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as run_profiler

    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * (device == "cuda")
    with run_profiler(activities=activities) as prof:
        for _ in range(PROFILE_STEPS):
            case.step()
        case.sync()
    key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=12)


def results_table(cases: list[Case], seconds: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    for column in ("configuration", "ms/step", "images/s", "sec/kimg", "ratio", "vs"):
        table.add_column(column, justify="left" if column in ("configuration", "vs") else "right")
    for case in cases:
        s = seconds[case.label]
        ratio, versus = "", ""
        if case.baseline in seconds:
            ratio, versus = f"{s / seconds[case.baseline]:.3f}", case.baseline
        table.add_row(case.label, f"{s * 1000:.1f}", f"{case.images_per_step / s:.0f}",
                      f"{s / case.images_per_step * 1000:.2f}", ratio, versus)
    return table


def targets_table(targets: list[Target], seconds: dict[str, float], on_gpu: bool) -> Table:
    note = "" if on_gpu else " (goals for a GPU: on the CPU these ratios show noise)"
    table = Table(title=f"targets{note}")
    for column in ("target", "measured", "goal", "verdict"):
        table.add_column(column, justify="right" if column in ("measured", "goal") else "left")
    for target in targets:
        goal = f"<= {target.goal}" if target.is_cost else f">= {target.goal}x"
        table.add_row(target.name, f"{target.value(seconds):.3f}", goal,
                      target.verdict(seconds))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["dcgan", "stylegan2_tiny"],
                        choices=sorted(MODEL_ARGS))
    parser.add_argument("--resolutions", nargs="+", type=int, default=[32])
    parser.add_argument("--options", nargs="*", default=list(OPTIONS), choices=list(OPTIONS),
                        help="speed options to measure (the CUDA-only ones are skipped on a CPU)")
    parser.add_argument("--overrides", nargs="*", default=[],
                        help="config overrides for every row, e.g. dataset.root=DIR")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="2 steps x 2 rounds, smoke test")
    parser.add_argument("--markdown", type=Path, help="also write the tables here (Markdown)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the two rows of every missed target")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 2, 2
    on_gpu = args.device == "cuda"
    device_name = (torch.cuda.get_device_name() if on_gpu
                   else f"CPU, {torch.get_num_threads()} threads")
    skipped: list[str] = []
    profiles: list[tuple[str, str]] = []
    with TemporaryDirectory() as tmp:
        cases = [case for model in args.models for resolution in args.resolutions
                 for case in cases_for(model, resolution, args.batch, args.device, args.options,
                                       args.overrides, Path(tmp), skipped)]
        seconds = measure(cases, args.steps, args.rounds)
        targets = targets_for(set(seconds), args.models, args.resolutions)
        by_label = {case.label: case for case in cases}
        if args.profile:
            for target in (t for t in targets if not t.met(seconds)):
                profiles += [(f"{target.name}: {label}", profile(by_label[label], args.device))
                             for label in (target.fast, target.slow)]
        timeline_source = next((c for c in reversed(cases) if "streams=2" in c.label), None)
        timeline = None
        if timeline_source is not None and timeline_source.trainer is not None:
            scheduler = timeline_source.trainer.scheduler
            scheduler.timings()
            for _ in range(3):
                timeline_source.step()
            timeline = timeline_table(scheduler.timings(),
                                      f"{timeline_source.label}: step timeline")
    table = results_table(cases, seconds, f"training step, batch {args.batch}, {device_name} "
                                          f"(median of {args.rounds} rounds x {args.steps} steps)")
    goals = targets_table(targets, seconds, on_gpu)
    console = console_for(*(r for r in (table, goals, timeline) if r is not None))
    console.print(table)
    console.print("ratio = time / baseline time: below 1 is faster")
    console.print(goals)
    if timeline is not None:
        console.print(timeline)
    for line in skipped:
        console.print(f"skipped: {line}")
    for title, text in profiles:
        console.print(f"profile of {title}\n{text}")
    if args.markdown is not None:
        parts = [markdown_table(table), "ratio = time / baseline time: below 1 is faster",
                 markdown_table(goals)]
        if timeline is not None:
            parts.append(markdown_table(timeline))
        parts += [f"- skipped: {line}" for line in skipped]
        parts += [f"profile of {title}:\n\n```\n{text}\n```" for title, text in profiles]
        args.markdown.write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
