"""Name -> component tables, one per kind (models, losses, datasets, ...).

A config group option selects a component by the ``name`` field of its schema, so ``loss=hinge``
resolves through ``LOSSES.get("hinge")``. Each entry may carry the dataclass schema that
validates its options; ``gan_runner.config.store`` registers those schemas with Hydra.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from gan_runner.core.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component and the schema of its config (if it has options)."""

    name: str
    value: T
    schema: type | None


class Registry(Generic[T]):
    """A table of named components of one kind, filled by decorators at import time.

    ``group`` is the config group whose options pick an entry by name (``model=dcgan``); the
    entries' schemas are what ``gan_runner.config.store`` gives Hydra for that group.
    """

    _with_groups: ClassVar[dict[str, Registry[Any]]] = {}

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        if group is not None:
            Registry._with_groups[group] = self

    @classmethod
    def config_groups(cls) -> dict[str, Registry[Any]]:
        """Config group -> the registry of its options, for every registry created so far
        (importing ``gan_runner`` creates and fills them all)."""
        return dict(cls._with_groups)

    def register(self, name: str, schema: type | None = None) -> Callable[[T], T]:
        """Decorator: file ``value`` under ``name``; a second entry of the same name is a bug."""

        def add(value: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, value, schema)
            return value

        return add

    def unregister(self, name: str) -> None:
        """Remove ``name``: a test that registers a throwaway component leaves the table as it
        found it."""
        del self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).value

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UserError(
                f"unknown {self.kind} {name!r}",
                f"choose one of: {', '.join(self.names())}",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: Any) -> bool:
        return name in self._entries


def import_submodules(package: str, path: Iterable[str]) -> None:
    """Import every module under a package (subpackages included), so that what they register
    is in the tables whatever the modules are called: a new component needs no list."""
    for module in pkgutil.walk_packages(path, prefix=f"{package}."):
        importlib.import_module(module.name)
