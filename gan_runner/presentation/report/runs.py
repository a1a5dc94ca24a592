"""Finding run directories and reading what they left on disk.

A run directory is any folder holding ``metrics.jsonl`` or ``summary.json``. Everything is
read tolerantly: a run that was killed can leave a half-written last row, no summary or a
truncated sample grid, and it must still show up in the report rather than break it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from PIL import Image

from gan_runner.core.errors import UserError
from gan_runner.storage.runlog import PROVENANCE_FILE

RUN_FILES = ("metrics.jsonl", "summary.json")
EVALUATIONS = ("eval", "final")


@dataclass
class Run:
    """One run directory as the report sees it."""

    path: Path
    name: str
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    overrides: dict[str, str] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)
    typed: list[str] = field(default_factory=list)  # the overrides as typed, in order
    provenance: list[dict[str, Any]] = field(default_factory=list)  # one per start of the run

    @property
    def status(self) -> str:
        if self.summary is None:
            return "incomplete"
        stopped = self.summary.get("stopped_by")
        return f"stopped ({stopped})" if stopped else "done"

    @property
    def options(self) -> dict[str, str]:
        """Config-group choices with the command-line overrides on top."""
        return {**self.choices, **self.overrides}

    def kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [row for row in self.rows if row.get("kind") in kinds]

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        return self.kind(*EVALUATIONS)

    @property
    def kimg(self) -> float | None:
        if self.summary is not None and "kimg" in self.summary:
            return self.summary["kimg"]
        return max((row["kimg"] for row in self.rows if "kimg" in row), default=None)

    @property
    def command(self) -> str:
        """The command that runs this job again (a sweep's job: its own overrides, not the
        sweep's); a run without Hydra's record gives the command line of its first start."""
        if self.typed or (self.path / ".hydra" / "overrides.yaml").is_file():
            return shlex.join(["gan-train", *self.typed])
        return str(self.provenance[0].get("command", "")) if self.provenance else ""

    def last_grid(self) -> Image.Image | None:
        """The newest sample grid that can be read (a killed run may leave a broken one)."""
        for path in sorted((self.path / "samples").glob("fakes_*kimg.png"), reverse=True):
            try:
                with Image.open(path) as image:
                    return image.convert("RGB")
            except OSError:
                continue
        return None


def natural_key(path: Path) -> list[Any]:
    """Sort ``2`` before ``10`` (multirun job numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


def find_runs(root: Path) -> list[Path]:
    """``root`` itself when it is a run, else every run directory below it."""
    if not root.is_dir():
        raise UserError(f"{root} is not a directory",
                        "give gan-report a run directory or a folder of runs, e.g. a sweep")
    if any((root / name).is_file() for name in RUN_FILES):
        return [root]
    found = {path.parent for name in RUN_FILES for path in root.rglob(name)}
    return sorted(found, key=lambda p: natural_key(p.relative_to(root)))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows that parse: a killed run can leave half a line at the end."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_summary(path: Path) -> dict[str, Any] | None:
    """None when missing or unreadable (it is written last, so a crash can cut it short)."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return summary if isinstance(summary, dict) else None


def canonical(value: str) -> str:
    """One spelling per value: a sweep records ``False`` and ``0.0001`` where a single run
    records what was typed (``false``, ``1e-4``), and they must not look swept."""
    lowered = value.lower()
    if lowered in ("true", "false", "null"):
        return lowered
    for number in (int, float):
        try:
            return str(number(value))
        except ValueError:
            continue
    return value


def read_typed(hydra_dir: Path) -> list[str]:
    """The overrides as typed (Hydra's ``overrides.yaml``); none when it is missing."""
    path = hydra_dir / "overrides.yaml"
    return [str(item) for item in OmegaConf.load(path)] if path.is_file() else []


def read_overrides(hydra_dir: Path) -> dict[str, str]:
    """``key=value`` overrides as typed (``+key`` adds count as ``key``)."""
    pairs = (item.lstrip("+").partition("=") for item in read_typed(hydra_dir))
    return {key: canonical(value) for key, _, value in pairs}


def read_choices(summary: dict[str, Any] | None, hydra_dir: Path) -> dict[str, str]:
    """The config-group choices: from the summary, or (a run still going) Hydra's record."""
    if summary is not None and summary.get("choices"):
        return dict(summary["choices"])
    path = hydra_dir / "hydra.yaml"
    if not path.is_file():
        return {}
    choices = OmegaConf.to_container(OmegaConf.load(path).hydra.runtime.choices)
    return {k: str(v) for k, v in choices.items() if v is not None and not k.startswith("hydra")}


def load_run(path: Path, root: Path) -> Run:
    name = path.relative_to(root).as_posix() if path != root else path.resolve().name
    summary = read_summary(path / "summary.json")
    hydra_dir = path / ".hydra"
    return Run(path=path, name=name, rows=read_jsonl(path / "metrics.jsonl"), summary=summary,
               overrides=read_overrides(hydra_dir), choices=read_choices(summary, hydra_dir),
               typed=read_typed(hydra_dir), provenance=read_jsonl(path / PROVENANCE_FILE))


def load_runs(root: Path) -> list[Run]:
    runs = [load_run(path, root) for path in find_runs(root)]
    if not runs:
        raise UserError(f"no runs under {root}",
                        "a run directory holds metrics.jsonl or summary.json; give gan-report "
                        "one, or a folder of them such as a sweep directory")
    return runs
