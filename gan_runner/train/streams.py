"""Which task of a phase runs on which stream, and the lanes that carry them out.

A phase's tasks form a small graph (each names its inputs). ``plan_lanes`` lays the graph onto
``n`` lanes as chains: a task continues the lane whose last task produced one of its inputs, and
otherwise opens a new lane while there are free ones. An input made on another lane becomes a
*wait* on that producer's event. For D main with two lanes this reproduces the drawing in the
user's notes: lane 0 carries z -> fake -> fake logits, lane 1 real logits, joined at the loss.

The plan is pure data, so it is tested on any machine. ``CudaLanes`` runs a plan on CUDA
streams; ``HostLanes`` runs the same plan, in the same order, on the calling thread - the CPU
path is the same code, with waits and records that are no-ops. Tasks are always *issued* in
declared order, so random draws inside tasks (augmentation, penalties) consume the generators
in the same order with or without streams.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from gan_runner.train.phases import Phase


@dataclass(frozen=True)
class Placement:
    """Task ``task`` runs on ``lane`` after the events of the producers in ``waits``."""

    task: str
    lane: int
    waits: tuple[str, ...]


def plan_lanes(phase: Phase, lanes: int) -> tuple[Placement, ...]:
    """Chains of dependent tasks, one per lane while lanes last (then the least busy lane)."""
    lane_of: dict[str, int] = {}
    tail: dict[int, str] = {}  # lane -> the last task placed on it
    load = [0] * lanes
    plan = []
    for task in phase.tasks:
        produced = [name for name in task.inputs if name in lane_of]
        chained = [lane_of[name] for name in produced if tail[lane_of[name]] == name]
        if chained:
            lane = chained[0]
        elif len(tail) < lanes:
            lane = len(tail)
        else:
            lane = min(range(lanes), key=lambda i: (load[i], i))
        waits = tuple(name for name in produced if lane_of[name] != lane)
        plan.append(Placement(task.name, lane, waits))
        lane_of[task.name], tail[lane] = lane, task.name
        load[lane] += 1
    return tuple(plan)


class Lanes(Protocol):
    """What the scheduler needs from an execution backend."""

    count: int

    def begin(self) -> None: ...
    def on(self, lane: int) -> Any: ...  # a context manager
    def wait(self, lane: int, event: Any) -> None: ...
    def record(self, lane: int) -> Any: ...
    def share(self, tensor: Tensor, lane: int) -> None: ...
    def join(self) -> None: ...
    def mark(self, lane: int) -> Any: ...  # a timestamp taken when the lane reaches this point
    def elapsed_ms(self, start: Any, end: Any) -> float: ...  # after ``settle``
    def settle(self) -> None: ...  # wait until every mark so far has been reached


class HostLanes:
    """One lane in effect: the calling thread, in issue order."""

    def __init__(self, count: int = 1) -> None:
        self.count = count

    def begin(self) -> None:
        pass

    def on(self, lane: int) -> Any:
        return nullcontext()

    def wait(self, lane: int, event: Any) -> None:
        pass

    def record(self, lane: int) -> Any:
        return None

    def share(self, tensor: Tensor, lane: int) -> None:
        pass

    def join(self) -> None:
        pass

    def mark(self, lane: int) -> float:
        return time.perf_counter()

    def elapsed_ms(self, start: float, end: float) -> float:
        return (end - start) * 1000

    def settle(self) -> None:
        pass


class CudaLanes:
    """Lane 0 is the current stream; lanes 1.. are side streams created once.

    Side streams first wait for the current stream (the phase's inputs were made there) and
    the current stream waits for all of them at the end, so code outside the phase never sees
    a stream. A tensor made on one lane and read on another is handed to the caching allocator
    with ``record_stream``, so its memory is not reused while the reader may still run.
    """

    def __init__(self, count: int, device: torch.device) -> None:
        self.count = count
        self.device = device
        self.side = [torch.cuda.Stream(device) for _ in range(count - 1)]

    def stream(self, lane: int) -> torch.cuda.Stream:
        return torch.cuda.current_stream(self.device) if lane == 0 else self.side[lane - 1]

    def begin(self) -> None:
        main = torch.cuda.current_stream(self.device)
        for stream in self.side:
            stream.wait_stream(main)

    def on(self, lane: int) -> Any:
        return torch.cuda.stream(self.stream(lane)) if lane else nullcontext()

    def wait(self, lane: int, event: torch.cuda.Event) -> None:
        self.stream(lane).wait_event(event)

    def record(self, lane: int) -> torch.cuda.Event:
        event = torch.cuda.Event()
        event.record(self.stream(lane))
        return event

    def share(self, tensor: Tensor, lane: int) -> None:
        if tensor.is_cuda:
            tensor.record_stream(self.stream(lane))

    def join(self) -> None:
        main = torch.cuda.current_stream(self.device)
        for stream in self.side:
            main.wait_stream(stream)

    def mark(self, lane: int) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record(self.stream(lane))
        return event

    def elapsed_ms(self, start: torch.cuda.Event, end: torch.cuda.Event) -> float:
        return start.elapsed_time(end)

    def settle(self) -> None:
        torch.cuda.synchronize(self.device)


def resolve_lane_count(setting: str, device: torch.device) -> int:
    """``trainer.streams``: off = 1 lane; auto = 2 on CUDA (fakes | reals), 1 elsewhere; N."""
    if setting == "off":
        return 1
    if setting == "auto":
        return 2 if device.type == "cuda" else 1
    return int(setting)


def build_lanes(setting: str, device: torch.device) -> Lanes:
    """CUDA lanes on a GPU even with one lane (its timing marks are stream events)."""
    count = resolve_lane_count(setting, device)
    return CudaLanes(count, device) if device.type == "cuda" else HostLanes(count)
