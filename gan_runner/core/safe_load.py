"""Reading tensor files that someone else may have written, without running their code.

A pickle can name any Python function to call while it is read (``os.system``, ``open``).
``torch.load(weights_only=True)`` refuses every name outside a short list of tensor and
container types, so a file can at worst hold wrong numbers, never act. Every ``.pt`` the
project reads goes through here, so the refusal and its message are the same everywhere.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from gan_runner.core.errors import UserError

UNTRUSTED_HINT = ("it was refused and nothing ran; gan_runner never writes such files, so do "
                  "not use it, and ask whoever sent it for a gan-export .safetensors file")
_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
_UNPICKLER = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")
_REASON_CHARS = 120


def first_line(error: BaseException) -> str:
    """The gist of an error from a library, for a one-line message: its first sentence."""
    text = str(error).strip()
    if isinstance(error, KeyError) or not text:
        text = f"{type(error).__name__} {text}".strip()
    text = text.splitlines()[0].split(". ")[0].rstrip(".")
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 3] + "..."


def torch_load_plain(data: bytes, what: str, hint: str, map_location: Any = "cpu",
                     allow: Sequence[Any] = ()) -> Any:
    """The tensors and plain containers pickled in ``data``; ``UserError`` for anything else.

    ``what`` names the file in the message. ``allow`` adds globals known to be inert
    constructors (NumPy's array rebuild, for checkpoints written before format 2).
    """
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(allow)):
            warnings.simplefilter("ignore")  # torch warns about protocols on foreign pickles
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as error:  # the unpickler raises many types for a file it cannot read
        named = _GLOBAL.findall(str(error))
        if named:
            raise UserError(f"{what} names Python code to run when it is loaded "
                            f"({', '.join(named)})", UNTRUSTED_HINT) from None
        reason = _UNPICKLER.search(str(error))
        raise UserError(f"{what} cannot be read: "
                        f"{reason.group(1).rstrip('.') if reason else first_line(error)}",
                        hint) from None
