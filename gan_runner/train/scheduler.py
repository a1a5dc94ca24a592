"""Runs a phase's task graph on lanes (CUDA streams or the host) and sums its loss.

One code path for every device: the plan from ``plan_lanes`` decides each task's lane and
the events it waits for; ``HostLanes`` turns that into plain sequential calls, ``CudaLanes``
into streams and events. Tasks are issued in declared order either way, so on the CPU the
result is bitwise the sequential schedule, and on a GPU it differs only by floating-point
reordering inside kernels.

Autograd runs each backward kernel on the stream of its forward kernel, so the backward pass
overlaps the same way the forward did; the phase loss is summed on lane 0 after the join.

With ``timing`` on, every task is bracketed by lane marks (CUDA timing events, or
``perf_counter`` on the host) and ``timings()`` reports, per phase and task, the mean duration
and the mean start offset from the phase start - what the timeline view draws.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from gan_runner.train.phases import Phase
from gan_runner.train.streams import HostLanes, Lanes, Placement, plan_lanes


@dataclass(frozen=True)
class TaskTiming:
    """Mean over the calls since the last report, in milliseconds."""

    phase: str
    task: str
    lane: int
    start_ms: float  # from the phase start
    duration_ms: float
    calls: int


class StepScheduler:
    """``run(phase, env)`` -> (phase loss, env with every task output)."""

    def __init__(self, lanes: Lanes | None = None, timing: bool = False) -> None:
        self.lanes = lanes or HostLanes()
        self.timing = timing
        self._plans: dict[str, tuple[Placement, ...]] = {}
        self._marks: dict[tuple[str, str, int], list[tuple[Any, Any, Any]]] = defaultdict(list)
        self._phase_start: Any = None

    @contextmanager
    def measure(self, phase: str, label: str) -> Iterator[None]:
        """Times work of the loop's own on lane 0 (backward, optimizer step) in the phase's
        timeline, from the start of the phase's last ``run``."""
        if not self.timing:
            yield
            return
        start = self.lanes.mark(0)
        yield
        self._marks[(phase, label, 0)].append((self._phase_start, start, self.lanes.mark(0)))

    def plan(self, phase: Phase) -> tuple[Placement, ...]:
        if phase.name not in self._plans:
            self._plans[phase.name] = plan_lanes(phase, self.lanes.count)
        return self._plans[phase.name]

    def run(self, phase: Phase, env: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        lanes, tasks = self.lanes, {task.name: task for task in phase.tasks}
        lane_of = {name: 0 for name in env}  # the phase inputs come from lane 0
        events: dict[str, Any] = {}
        lanes.begin()
        phase_start = self._phase_start = lanes.mark(0) if self.timing else None
        for placement in self.plan(phase):
            task, lane = tasks[placement.task], placement.lane
            for name in placement.waits:
                lanes.wait(lane, events[name])
            for name in task.inputs:
                if lane_of[name] != lane:
                    lanes.share(env[name], lane)
            with lanes.on(lane):
                start = lanes.mark(lane) if self.timing else None
                env[task.name] = task.fn(*(env[name] for name in task.inputs))
                if self.timing:
                    self._marks[(phase.name, task.name, lane)].append(
                        (phase_start, start, lanes.mark(lane)))
            events[task.name] = lanes.record(lane)
            lane_of[task.name] = lane
        lanes.join()
        for name in phase.terms:
            if lane_of[name] != 0:
                lanes.share(env[name], 0)
        loss = sum(env[name] * weight for name, weight in phase.terms.items())
        return loss, env  # type: ignore[return-value]

    def timings(self) -> list[TaskTiming]:
        """Means since the last call (waits for the marks to be reached: call it rarely)."""
        if not self._marks:
            return []
        self.lanes.settle()
        out = []
        for (phase, task, lane), marks in self._marks.items():
            elapsed = self.lanes.elapsed_ms
            out.append(TaskTiming(
                phase, task, lane,
                start_ms=sum(elapsed(p, s) for p, s, _ in marks) / len(marks),
                duration_ms=sum(elapsed(s, e) for _, s, e in marks) / len(marks),
                calls=len(marks)))
        self._marks.clear()
        return out
