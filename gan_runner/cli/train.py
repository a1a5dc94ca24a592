"""``gan-train``: compose the config groups with Hydra and train.

Examples: ``gan-train model=dcgan loss=hinge``, ``gan-train -m loss=ns,hinge,wgan_gp``,
``gan-train --cfg job`` (print the composed config), ``gan-train --help``; several processes:
``torchrun --nproc_per_node 2 -m gan_runner.cli.train ...`` (see ``train/distributed.py``).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
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
          "metrics", "experiment", "debug")


def apply_thread_limit() -> None:
    """OpenMP reads OMP_NUM_THREADS once, when torch loads; in a launcher's worker that happens
    before Hydra applies ``hydra.job.env_set``, so a launcher preset's value is applied here."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def require_objective(cfg: DictConfig) -> None:
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
    require_objective(cfg)
    runtime = HydraConfig.get().runtime
    choices = {k: v for k, v in runtime.choices.items() if k in GROUPS and v is not None}
    train_cfg = validated(cfg)
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
    entry = hydra.main(config_path="pkg://gan_runner.conf", config_name="train",
                       version_base=None)(train_task)

    def launch() -> None:
        sys.argv += torchrun_overrides(sys.argv[1:])
        entry()

    run_reporting_errors(launch)


if __name__ == "__main__":
    main()
