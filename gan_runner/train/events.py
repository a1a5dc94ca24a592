"""The periodic events of a run (log, evaluate, snapshot): each an interval in images and an
action, fired in the order listed when its interval comes round and once more at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class PeriodicEvent:
    """``action`` every ``every`` images (counted from image 0, so a resumed run keeps the
    schedule of an uninterrupted one) and at the end; ``every`` = 0 fires only at the end."""

    name: str
    every: int
    action: Callable[[], object]
    next: int = 0  # the image count at which it is due next

    def start(self, nimg: int) -> None:
        self.next = (nimg // self.every + 1) * self.every if self.every else -1

    def due(self, nimg: int, finished: bool) -> bool:
        return finished or (self.every > 0 and nimg >= self.next)

    def fire(self, nimg: int) -> None:
        self.action()
        self.start(nimg)


def due_events(events: list[PeriodicEvent], nimg: int, finished: bool) -> list[PeriodicEvent]:
    return [event for event in events if event.due(nimg, finished)]
