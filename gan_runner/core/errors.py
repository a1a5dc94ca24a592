"""The one exception type for mistakes a user can make and fix.

Everything a user can get wrong (a bad value, a missing dataset, a corrupt checkpoint) raises
``UserError``; the command-line entry points catch it once and print a single line with the
hint, so users never have to read a traceback to learn what to change.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
