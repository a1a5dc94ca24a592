"""``gan-train``: compose the config groups with Hydra and train.

Examples: ``gan-train model=dcgan loss=hinge``, ``gan-train -m loss=ns,hinge,wgan_gp``,
``gan-train --cfg job`` (print the composed config), ``gan-train --help``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from gan_runner.cli.errors import exit_on_user_error, run_reporting_errors
from gan_runner.config.compose import as_dict, validated
from gan_runner.config.store import register_configs

GROUPS = ("dataset", "model", "loss", "regularizer", "augment", "optimizer", "trainer",
          "metrics", "experiment")


@exit_on_user_error
def train_task(cfg: DictConfig) -> Any:
    from gan_runner.train.loop import Trainer

    runtime = HydraConfig.get().runtime
    choices = {k: v for k, v in runtime.choices.items() if k in GROUPS and v is not None}
    summary = Trainer(validated(cfg), Path(runtime.output_dir), as_dict(cfg), choices).run()
    if summary["exit_status"]:  # stopped by SIGINT/SIGTERM after saving a checkpoint
        sys.exit(summary["exit_status"])
    return summary.get("objective")


def main() -> None:
    register_configs()
    entry = hydra.main(config_path="pkg://gan_runner.conf", config_name="train",
                       version_base=None)(train_task)
    run_reporting_errors(entry)


if __name__ == "__main__":
    main()
