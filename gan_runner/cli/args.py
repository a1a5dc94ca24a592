"""``key=value`` arguments for the small commands, in the same style as ``gan-train``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gan_runner.core.errors import UserError


@dataclass(frozen=True)
class Arg:
    """One ``key=value``; ``default`` is written as on the command line (or None)."""

    parse: Callable[[str], Any]
    default: str | None
    help: str
    required: bool = False


def parse_args(argv: list[str], spec: dict[str, Arg], usage: str) -> dict[str, Any]:
    """Parse ``key=value`` pairs; ``--help`` prints the usage and the keys."""
    if any(a in ("-h", "--help") for a in argv):
        print(usage)
        for key, arg in spec.items():
            default = " (required)" if arg.required else (
                "" if arg.default is None else f" (default: {arg.default})")
            print(f"  {key:<12} {arg.help}{default}")
        sys.exit(0)
    values = {key: None if arg.default is None else arg.parse(arg.default)
              for key, arg in spec.items()}
    for item in argv:
        key, sep, raw = item.partition("=")
        if not sep or key not in spec:
            raise UserError(f"unknown argument {item!r}",
                            f"use key=value with keys {', '.join(spec)}")
        try:
            values[key] = spec[key].parse(raw)
        except ValueError as error:
            raise UserError(f"{key}={raw} is not valid", str(error)) from None
    missing = [key for key, arg in spec.items() if arg.required and values[key] is None]
    if missing:
        raise UserError(f"missing {', '.join(k + '=' for k in missing)}", usage)
    return values


def parse_seeds(text: str) -> list[int]:
    """``0-63`` or ``1,5,9`` or a mix: ``0-3,10``."""
    seeds: list[int] = []
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if dash:
            if int(high) < int(low):
                raise ValueError(f"empty range {part}")
            seeds.extend(range(int(low), int(high) + 1))
        else:
            seeds.append(int(low))
    return seeds
