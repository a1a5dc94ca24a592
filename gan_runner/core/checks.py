"""Config value checks: the one-line message a user sees for a value out of range.

Every schema's ``__post_init__`` calls these, whichever layer the schema lives in.
"""

from __future__ import annotations

from typing import Any

from gan_runner.core.errors import UserError


def require(condition: bool, key: str, value: Any, expected: str) -> None:
    """Reject a config value with the one-line message users see."""
    if not condition:
        raise UserError(f"{key}={value!r} is not valid", f"expected {expected}")


def require_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    require(value in choices, key, value, "one of " + "|".join(choices))
