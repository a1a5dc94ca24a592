"""What a run leaves behind: log rows, sample pictures, checkpoints and the summary.

Only rank 0 writes (``runlog`` is None elsewhere); every rank still takes part in a snapshot,
because the checkpoint holds every rank's random state.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gan_runner import __version__
from gan_runner.core.rng import capture_rng
from gan_runner.core.spec import DataSpec
from gan_runner.data.datasets import RealData
from gan_runner.storage.checkpoint import checkpoint_path, prune
from gan_runner.storage.images import class_grid, samples_picture, save_png
from gan_runner.storage.run_checkpoint import RunCheckpoint
from gan_runner.storage.runlog import RunLog
from gan_runner.train.distributed import World
from gan_runner.train.state import TrainState
from gan_runner.train.watch import FailureWatch

log = logging.getLogger(__name__)

RowSource = Callable[[], dict[str, Any]]  # a part of the log row, gathered at each log event


@dataclass
class Recorder:
    state: TrainState
    run_dir: Path
    config: dict[str, Any]  # the resolved config, as the checkpoints store it
    choices: dict[str, str]
    spec: DataSpec
    world: World
    keep: int  # trainer.checkpoints_keep
    grid_z: Tensor  # the fixed latents of every sample picture
    grid_c: Tensor | None = None  # and their classes, in rows, for a conditional G
    reference: Tensor | None = None  # the toy sets' mode centres, drawn into their pictures
    runlog: RunLog | None = None
    sources: list[RowSource] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict)  # the last one written
    watch: FailureWatch = field(default_factory=FailureWatch)
    _clock: tuple[float, int] = (0.0, 0)  # (time, nimg) of the last row

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.run_dir / "samples"

    def start(self) -> None:
        self._clock = (time.perf_counter(), self.state.nimg)

    def log_row(self) -> dict[str, Any]:
        """One row of metrics.jsonl: counters, the sources' parts, the pace since the last."""
        state, (then, then_nimg) = self.state, self._clock
        now = time.perf_counter()
        row: dict[str, Any] = {"kind": "train", "kimg": round(state.kimg, 3),
                               "g_steps": state.g_steps, "d_steps": state.d_steps}
        for source in self.sources:
            row.update(source())
        row["sec_per_kimg"] = (now - then) / max(state.nimg - then_nimg, 1) * 1000
        self._clock = (now, state.nimg)
        if state.skipped:
            row["skipped_updates"] = state.skipped
        if self.runlog is not None:
            self.runlog.write(row)
            for message in self.watch.check(row):
                log.warning("%.1f kimg: %s", state.kimg, message)
        self.row = row
        return row

    def picture(self) -> Any:
        G = self.state.G_ema
        device = next(G.parameters()).device
        with torch.no_grad():
            if self.grid_c is None:
                return samples_picture(G(self.grid_z.to(device)), self.reference)
            samples = G(self.grid_z.to(device), self.grid_c.to(device))
        if samples.dim() == 4:  # a row per class, named
            names = [self.spec.class_name(k) for k in range(self.spec.num_classes)]
            return class_grid(samples, names)
        return samples_picture(samples, self.reference)

    def reals(self, data: RealData, count: int) -> None:
        """The picture of real samples a new run starts with, to compare the fakes against."""
        if self.runlog is None:
            return
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
        picture = samples_picture(data.batch(order[:count]), self.reference)
        save_png(picture, self.samples / "reals.png")
        self.runlog.image("reals", picture, 0)

    def snapshot(self) -> Path:
        """Sample picture of the EMA generator, then an atomic checkpoint of the whole state
        (with every rank's random state); the other ranks only send theirs."""
        state = self.state
        rank_rng = self.world.collect(capture_rng())
        path = checkpoint_path(self.checkpoints, state.nimg)
        if self.runlog is None:
            return path
        picture = self.picture()
        save_png(picture, self.samples / f"fakes_{state.nimg // 1000:06d}kimg.png")
        self.runlog.image("fakes", picture, state.kimg)
        if path.exists():  # already saved at this image count (a new best)
            return path
        for name in ("G", "D"):
            self.runlog.histograms(name, getattr(state, name), state.kimg)
        RunCheckpoint(config=self.config, spec=self.spec, state=state.state_dict(),
                      version=__version__, choices=self.choices, rank_rng=rank_rng).save(path)
        protect = {Path(b["path"]) for b in state.best.values() if "path" in b}
        prune(self.checkpoints, self.keep, protect)
        return path

    def summary(self, wall: float, start_nimg: int, resumed: Path | None, best_metric: str,
                stopped_by: str | None, exit_status: int) -> dict[str, Any]:
        """summary.json: what a sweeper, a report or a person reads first."""
        state = self.state
        summary = {
            "kimg": state.kimg, "wall_seconds": round(wall, 2),
            "sec_per_kimg": round(wall / max(state.nimg - start_nimg, 1) * 1000, 3),
            "final": {k: v for k, v in self.row.items() if k.startswith(("loss/", "reg/"))},
            "best": state.best, "resumed_from": str(resumed) if resumed else None,
            # what a sweeper minimizes or maximizes: the best value of metrics.best
            "objective": state.best.get(best_metric, {}).get("value"),
            "stopped_by": stopped_by, "exit_status": exit_status, "choices": self.choices,
        }
        if self.runlog is not None:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
            self.runlog.close()
        return summary
