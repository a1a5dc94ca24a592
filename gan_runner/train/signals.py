"""SIGINT and SIGTERM stop a run between steps, after a checkpoint, instead of mid-write.

A scheduler's SIGTERM (SLURM before a requeue) or a Ctrl-C sets a flag that the loop checks
after each iteration; it then saves the whole state and returns. A second signal while that is
happening stops at once (KeyboardInterrupt), as users expect from a second Ctrl-C.

``REQUEUE`` (SIGUSR2, or $SUBMITIT_PREEMPT_SIGNAL) is submitit's warning before a SLURM time
limit or a preemption. It stops the run the same way, but never at once, even next to a SIGTERM:
the checkpoint must be written before ``gan-train`` hands the signal on to submitit's handler,
which requeues the job (see the README's "Sweeps").
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

REQUEUE = signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]
HANDLED = (signal.SIGINT, signal.SIGTERM, REQUEUE)


class StopRequest:
    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # handlers live there only
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        if received == REQUEUE or self.signal is None:
            self.signal = received  # REQUEUE wins: the caller must also hand it on
        elif self.signal != REQUEUE:
            raise KeyboardInterrupt

    @property
    def exit_status(self) -> int:
        """128 + the signal number, the shell's convention (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + int(self.signal) if self.signal is not None else 0
