"""What the loop does about non-finite updates once it has counted them on the host."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gan_runner.config.schema import TrainerConfig
from gan_runner.core.errors import UserError
from gan_runner.storage.run_checkpoint import latest_run_checkpoint
from gan_runner.train.nonfinite import NonFiniteCounter
from gan_runner.train.state import TrainState

log = logging.getLogger(__name__)


def settle_nonfinite(state: TrainState, counter: NonFiniteCounter, cfg: TrainerConfig,
                     checkpoints: Path, device: torch.device) -> None:
    """Bring the device's count of non-finite updates to the host (one sync): they join
    ``skipped`` with a warning, and a streak of ``trainer.nonfinite_patience`` in a row since
    the last settle brings back the last checkpoint's networks. The loop calls it where it
    waits for the device anyway: log rows, snapshots and evaluations."""
    streak = None
    for net, counts in counter.read().items():
        if counts.new:
            state.skipped += counts.new
            log.warning("%.1f kimg: %d non-finite %s updates since the last check, their "
                        "gradients zeroed (%d so far)", state.kimg, counts.new, net,
                        state.skipped)
        if counts.longest >= cfg.nonfinite_patience and streak is None:
            streak = (net, counts.longest)
    if streak is not None:
        restore_last_good(state, counter, cfg, checkpoints, device, *streak)


def restore_last_good(state: TrainState, counter: NonFiniteCounter, cfg: TrainerConfig,
                      checkpoints: Path, device: torch.device, net: str, streak: int) -> None:
    """Networks, optimizers and augmentation state from the newest valid checkpoint; the
    data position and random streams go on, so the run does not replay the same batches into
    the same failure. Nothing (learning rate, precision) is changed behind the user's back:
    after ``max_restores`` fruitless restores the run stops and says what to try."""
    found = latest_run_checkpoint(checkpoints, device)
    if found is None or state.restores >= cfg.max_restores:
        where = (f"after {state.restores} restores" if found is not None
                 else "before the first checkpoint")
        raise UserError(
            f"training diverged at {state.kimg:.1f} kimg: {streak} non-finite "
            f"{net} updates in a row {where}",
            "lower optimizer.g_lr/d_lr, use trainer.precision=fp32 or add regularizer=r1; "
            "the saved checkpoints are intact")
    path, checkpoint = found
    state.load_training(checkpoint.state)
    state.restores += 1
    counter.clear()
    log.warning("%.1f kimg: %d non-finite updates in a row; restored networks and optimizers "
                "from %s (restore %d of at most %d), continuing with new batches",
                state.kimg, streak, path, state.restores, cfg.max_restores)
