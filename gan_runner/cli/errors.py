"""One line per user error: what is wrong and how to fix it, never a traceback.

Hydra's own errors (unknown group option, unknown key, wrong type) arrive as multi-line
messages; ``describe`` boils them down to the line a user needs. A full disk is the user's to
fix too: whatever write hit it, the newest complete checkpoint is intact (io/checkpoint.py).
"""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from gan_runner.config.schema import unknown_setting
from gan_runner.core.errors import UserError

T = TypeVar("T")
EXIT_USER_ERROR = 2
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
USER_ERRORS = (UserError, HydraException, OmegaConfBaseException)


def _chain(error: BaseException) -> list[BaseException]:
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    return chain


def _disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL


def _users(error: BaseException) -> bool:
    """Whether ``error`` is the user's to fix (a program bug keeps its traceback). Checked
    before the errno: some Hydra errors are OSErrors too (MissingConfigException)."""
    return isinstance(error, USER_ERRORS) or _disk_full(error) or _hydra_flags(error)


def _hydra_flags(error: BaseException) -> bool:
    """Hydra rejects clashing mode flags (e.g. ``-m`` with ``--cfg``) with a plain ValueError."""
    return isinstance(error, ValueError) and str(error).startswith("Only one of --")


def describe(error: BaseException) -> str:
    """The one-line message for a user error (UserError, or a Hydra/OmegaConf config error)."""
    chain = _chain(error)
    for item in chain:
        if isinstance(item, UserError):
            return str(item)
        if _disk_full(item):
            where = f" while writing {item.filename}" if item.filename else ""
            return (f"disk full{where}: {item.strerror} (free some space, then run the same "
                    "command again: gan-train resumes from its last complete checkpoint)")
    text = "\n".join(str(e) for e in chain)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, name = missing.groups()
        options = re.findall(r"^\t(\S+)$", text.split("Available options", 1)[-1], re.M)
        hint = f"choose one of: {', '.join(options)}" if options else "check the spelling"
        return f"unknown {group} option {name!r} ({hint})"
    unknown_key = re.search(r"Could not override '([^']+)'", text)
    if unknown_key and "not in" in text:
        return str(unknown_setting(unknown_key.group(1)))
    bad_value = re.search(r"Value '([^']*)' (?:of type '\w+' )?could not be converted to (\w+)",
                          text)
    key = re.search(r"full_key: (\S+)", text)
    if bad_value and key:
        return (f"{key.group(1)}={bad_value.group(1)} is not valid "
                f"(expected a value of type {bad_value.group(2)})")
    first = next((line.strip() for line in text.splitlines() if line.strip()), repr(error))
    return first


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """For Hydra task functions: Hydra would print its own banner before a task's exception,
    so user errors leave the task as an exit status instead (SystemExit passes through)."""

    @functools.wraps(task)
    def wrapped(*args: object, **kwargs: object) -> T:
        try:
            return task(*args, **kwargs)
        except Exception as error:
            if not _users(error):
                raise
            fail(describe(error))

    return wrapped


def run_reporting_errors(main: Callable[[], T]) -> T:
    """Run an entry point; user and config errors become one line and exit status 2.

    HYDRA_FULL_ERROR makes Hydra raise instead of printing its own multi-line report, so the
    message can be shortened here; program bugs still show their traceback.
    """
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        return main()
    except Exception as error:
        if not _users(error):
            raise
        fail(describe(error))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
