"""The evaluation hook of a run: metrics of the EMA generator, their history, and the
checkpoint of each new best (``metrics.best``), which pruning keeps."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gan_runner.metrics.base import MetricsConfig
from gan_runner.metrics.ranking import METRIC_KEYS, better
from gan_runner.storage.checkpoint import checkpoint_path
from gan_runner.train.progress import TrainingProgress
from gan_runner.train.recorder import Recorder

if TYPE_CHECKING:
    from gan_runner.metrics.evaluate import Evaluator

log = logging.getLogger(__name__)


@dataclass
class EvaluationHook:
    """Every rank evaluates its share (the evaluator's ``Shard``) and ends with the same
    results, so every rank records the same history and best; rank 0 writes the row."""

    cfg: MetricsConfig
    evaluator: Evaluator | None
    recorder: Recorder
    progress: TrainingProgress | None = None  # set by the loop while its bar is up

    def __call__(self, num_fakes: int | None = None, kind: str = "eval") -> dict[str, Any]:
        recorder, state = self.recorder, self.recorder.state
        if self.evaluator is None:
            raise RuntimeError("an evaluation event without an evaluator")
        results = self._with_bar(kind, num_fakes, self.evaluator)
        if recorder.runlog is not None:
            recorder.runlog.write({"kind": kind, "kimg": round(state.kimg, 3), **results})
        state.history.append({"kind": kind, "kimg": round(state.kimg, 3),
                              **{k: results[k] for k in METRIC_KEYS if k in results}})
        log.info("%.1f kimg %s (%d fakes): %s", state.kimg, kind, results["num_fakes"],
                 "  ".join(f"{k}={results[k]:.4g}" for k in METRIC_KEYS if k in results))
        metric = self.cfg.best
        if kind == "eval" and metric in results and better(
                metric, results[metric], state.best.get(metric, {}).get("value")):
            path = checkpoint_path(recorder.checkpoints, state.nimg)
            state.best[metric] = {"value": results[metric], "kimg": state.kimg, "path": str(path)}
            recorder.snapshot()
        return results

    def _with_bar(self, kind: str, num_fakes: int | None, evaluator: Evaluator
                  ) -> dict[str, Any]:
        """The evaluation under its own bar (its own ETA) below the training bar."""
        G = self.recorder.state.G_ema
        if self.progress is None:
            return evaluator(G, num_fakes)
        advance, remove = self.progress.subtask(f"{kind}: {'/'.join(self.cfg.names)}",
                                                evaluator.work(num_fakes))
        try:
            return evaluator(G, num_fakes, advance=advance)
        finally:
            remove()
