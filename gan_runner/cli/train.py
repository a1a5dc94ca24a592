"""``gan-train``: compose the config groups with Hydra and train.

Examples: ``gan-train model=dcgan loss=hinge``, ``gan-train -m loss=ns,hinge,wgan_gp``,
``gan-train --cfg job`` (print the composed config), ``gan-train --help``.
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

from gan_runner.cli.errors import exit_on_user_error, run_reporting_errors
from gan_runner.config.compose import as_dict, validated
from gan_runner.config.store import register_configs
from gan_runner.errors import UserError
from gan_runner.plugins import load_plugins
from gan_runner.train.signals import REQUEUE

GROUPS = ("dataset", "model", "loss", "regularizer", "augment", "optimizer", "trainer",
          "metrics", "experiment")


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

    load_plugins()  # a launcher's worker process (joblib, submitit) starts with empty registries
    apply_thread_limit()
    require_objective(cfg)
    runtime = HydraConfig.get().runtime
    choices = {k: v for k, v in runtime.choices.items() if k in GROUPS and v is not None}
    summary = Trainer(validated(cfg), Path(runtime.output_dir), as_dict(cfg), choices).run()
    if summary["exit_status"]:  # stopped by a signal after saving a checkpoint
        exit_after_stop(summary)
    return summary.get("objective")


def main() -> None:
    register_configs()
    entry = hydra.main(config_path="pkg://gan_runner.conf", config_name="train",
                       version_base=None)(train_task)
    run_reporting_errors(entry)


if __name__ == "__main__":
    main()
