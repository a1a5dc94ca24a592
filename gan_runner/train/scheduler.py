"""Runs a phase's tasks and sums its loss.

``SequentialScheduler`` runs tasks in their declared (dependency) order - the CPU path and
the reference that any concurrent scheduler must match.
"""

from __future__ import annotations

from torch import Tensor

from gan_runner.train.phases import Phase


class SequentialScheduler:
    def run(self, phase: Phase, env: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Returns the phase loss and every task output (for logging)."""
        for task in phase.tasks:
            env[task.name] = task.fn(*(env[name] for name in task.inputs))
        loss = sum(env[name] * weight for name, weight in phase.terms.items())
        return loss, env  # type: ignore[return-value]
