"""``gan-train``: compose the config groups with Hydra and train.

Examples: ``gan-train model=dcgan loss=hinge``, ``gan-train -m loss=ns,hinge,wgan_gp``,
``gan-train --cfg job`` (print the composed config), ``gan-train --help``; several processes:
``torchrun --nproc_per_node 2 -m gan_runner.cli.train ...`` (see ``train/distributed.py``).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Sequence
from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from gan_runner.cli.errors import exit_on_user_error, run_reporting_errors
from gan_runner.config.compose import as_dict, validated
from gan_runner.config.store import register_configs
from gan_runner.core.devices import select_device
from gan_runner.core.errors import UserError
from gan_runner.presentation.timeline import timeline_table
from gan_runner.train.distributed import process_group
from gan_runner.train.signals import REQUEUE

GROUPS = ("dataset", "model", "loss", "regularizer", "augment", "optimizer", "trainer",
          "metrics", "conditioning", "logger", "experiment", "debug")
# what each group is for, in `gan-train --help` (its options describe themselves: conf/)
GROUP_HELP = {
    "dataset": "the real images (dataset.root=DIR, resolution, max_images, download=true)",
    "model": "G and D (model.channels=..., model.spectral_norm=true)",
    "loss": "the adversarial loss (loss.real_label=0.9: one-sided label smoothing)",
    "regularizer": "penalty terms; a list combines them: regularizer=[r1,bcr]",
    "augment": "what D's inputs go through (augment.p, augment.preset=bgc)",
    "optimizer": "G's and D's optimizers (g_lr, d_lr, betas, lr_schedule=linear)",
    "trainer": "length, batch, EMA, seed, device, resume, speed options",
    "metrics": "evaluation while training (every_kimg, num_fakes, best, features)",
    "conditioning": "class labels: how G and D take them (conditioning.g, .d), or InfoGAN's codes",
    "logger": "where the numbers go besides metrics.jsonl; a list: logger=[tensorboard,wandb]",
    "experiment": "presets: several groups and values at once",
    "debug": "a run of seconds after any experiment",
}
HELP_WIDTH = 100


def first_sentence(option_file: Traversable) -> str:
    """An option's one line: the first sentence of its file's leading comment."""
    comment = []
    for line in option_file.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            comment.append(line.lstrip("# ").strip())
    text = " ".join(comment)
    end = re.search(r"(?<!\bal)(?<!\beq)(?<!e\.g)\.(\s|$)", text)  # not "et al.", "eq."...
    return text[:end.start() + 1] if end else text


def chosen(choices: Any, overrides: Sequence[str], group: str) -> set[str]:
    """The options of ``group`` this run takes: Hydra records a single choice, and a list
    (``logger=[csv,wandb]``) only as the override typed."""
    if choices.get(group) is not None:
        return {str(choices[group])}
    typed = [value for key, _, value in (o.partition("=") for o in overrides) if key == group]
    return set(typed[-1].strip("[]").split(",")) if typed else set()


def groups_help(choices: Any, overrides: Sequence[str]) -> str:
    """The config groups of ``gan-train --help``: each with what it is for, then its options
    (``*``: this run's choice) and their one line each, read from ``conf/`` as shipped."""
    conf = files("gan_runner.conf")
    lines = []
    for group in GROUPS + tuple(g for g in GROUP_HELP if g not in GROUPS):
        folder = conf.joinpath(group)
        if not folder.is_dir():
            continue
        picked = chosen(choices, overrides, group)
        lines.append(f"{group + ':':<14}{GROUP_HELP.get(group, '')}")
        for option in sorted(p for p in folder.iterdir() if p.name.endswith(".yaml")):
            name = option.name[:-5]
            line = f"  {'*' if name in picked else ' '}{name:<17}{first_sentence(option)}"
            lines.append(line if len(line) <= HELP_WIDTH else line[:HELP_WIDTH - 3] + "...")
    return "\n".join(lines) + "\n"


def apply_thread_limit() -> None:
    """OpenMP reads OMP_NUM_THREADS once, when torch loads; in a launcher's worker that happens
    before Hydra applies ``hydra.job.env_set``, so a launcher preset's value is applied here."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def require_objective(cfg: Any) -> None:
    """An optimizing sweeper (one with a ``direction``, e.g. Optuna) needs a number from every
    trial; without metrics each trial would train in vain and the whole study fail at the end."""
    hydra_cfg = HydraConfig.get()
    optimizing = hydra_cfg.mode == RunMode.MULTIRUN and "direction" in hydra_cfg.sweeper
    if optimizing and not (cfg.metrics.best and cfg.metrics.names):
        raise UserError("the sweeper optimizes the value of metrics.best, but this run computes "
                        "none", "turn metrics on, e.g. metrics=fid or metrics=toy")


def exit_after_stop(summary: dict[str, Any]) -> NoReturn:
    """After a signal stopped the run (its checkpoint saved): the requeue warning goes on to the
    handler it replaced (submitit's requeues the job, which then resumes); else exit 128+n."""
    previous = signal.getsignal(REQUEUE)
    if summary["stopped_by"] == REQUEUE.name and callable(previous):
        previous(REQUEUE, None)
    sys.exit(summary["exit_status"])


@exit_on_user_error
def train_task(cfg: DictConfig) -> Any:
    """The objective a sweeper minimizes: the best value of ``metrics.best`` (None without)."""
    from gan_runner.train.loop import Trainer

    apply_thread_limit()
    train_cfg = validated(cfg)
    require_objective(train_cfg)  # validated: metrics=auto resolved to fid or toy
    runtime = HydraConfig.get().runtime
    choices = {k: v for k, v in runtime.choices.items() if k in GROUPS and v is not None}
    with process_group(select_device(train_cfg.trainer.device)) as world:
        run_dir = world.share(Path(runtime.output_dir))  # rank 0's (see torchrun_overrides)
        trainer = Trainer(train_cfg, run_dir, as_dict(cfg), choices)
        summary = trainer.run()
    if train_cfg.trainer.progress and trainer.timings and world.is_main:
        Console(stderr=True).print(timeline_table(
            trainer.timings, f"step timeline, ms per call ({trainer.scheduler.lanes.count} lanes)"))
    if summary["exit_status"]:  # stopped by a signal after saving a checkpoint
        exit_after_stop(summary)
    return summary.get("objective")


def torchrun_overrides(args: list[str]) -> list[str]:
    """Hydra overrides for a process that torchrun started. Each process composes the config
    on its own, so only rank 0 may keep Hydra's run directory (its clock names it), config copy
    and log file; the others write nothing, take rank 0's directory once the group is up, and
    log nothing: every rank takes the same decisions, and rank 0 reports them."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return []
    if {"-m", "--multirun"} & set(args):
        raise UserError("gan-train -m cannot run under torchrun (each job would need its own "
                        "process group)", "run one torchrun per job, without -m")
    if int(os.environ.get("RANK", "0")) == 0:
        return []
    return ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled"]


def main() -> None:
    register_configs()
    OmegaConf.register_new_resolver("gan_train_groups", groups_help, replace=True)
    entry = hydra.main(config_path="pkg://gan_runner.conf", config_name="train",
                       version_base=None)(train_task)

    def launch() -> None:
        sys.argv += torchrun_overrides(sys.argv[1:])
        entry()

    run_reporting_errors(launch)


if __name__ == "__main__":
    main()
