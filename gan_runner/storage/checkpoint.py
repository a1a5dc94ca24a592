"""The checkpoint container: complete and verified or not there at all, and never code.

A checkpoint file is a header line naming the format (``GANRUNNER-CKPT-2``), the sha256 of the
payload, then the ``torch.save`` payload. It is written atomically, so a crash leaves the
previous file intact; the checksum catches files that were truncated or damaged afterwards.
The checksum only proves that a file is intact, not that it is harmless: the payload is
written from plain data only (tensors, dicts, lists, tuples, str, int, float, bool, None) and
read with ``weights_only=True``, so a crafted file cannot run code (``gan_runner.core.safe_load``).

Formats: 1 (until gan_runner 0.1.0) kept NumPy's random state as an ndarray; it is read
with NumPy's array constructors allowed and nothing else. 2 holds plain data only. What the
payload of a training run holds, and how format 1 maps onto 2, is ``run_checkpoint``'s.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from gan_runner.core.errors import UserError
from gan_runner.core.paths import atomic_write
from gan_runner.core.safe_load import torch_load_plain

log = logging.getLogger(__name__)

FORMAT = 2  # what this code writes; it reads 1..FORMAT
PREFIX = b"GANRUNNER-CKPT-"
_DIGEST_LEN = 64
_NAME = re.compile(r"ckpt-(\d+)\.pt$")
# inert constructors of the NumPy arrays and scalars that format 1 stored (the random state)
_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
_FORMAT_1_GLOBALS = (_MULTIARRAY._reconstruct, _MULTIARRAY.scalar, np.ndarray, np.dtype,
                     *(type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64, np.float32)))
# exact types: subclasses (np.float64 is a float, a namedtuple a tuple) pickle by class name
SCALARS = (str, int, float, bool, type(None))
MAPPINGS = (dict, OrderedDict)
SEQUENCES = (list, tuple, torch.Size)
T = TypeVar("T")


class DamagedCheckpoint(UserError):
    """A checkpoint cut short or changed after it was written (e.g. by a crash mid-copy):
    the one kind of bad file that ``resume=auto`` may step over to an older checkpoint."""


def plain_problem(value: Any, where: str = "payload") -> str | None:
    """Where ``value`` holds something a safe reader would refuse (None when nothing)."""
    kind = type(value)
    if kind in SCALARS or isinstance(value, torch.Tensor):
        return None
    if kind in MAPPINGS:
        for key, item in value.items():
            if type(key) not in (str, int):
                return f"{where} has a key of type {type(key).__name__}"
            if (problem := plain_problem(item, f"{where}[{key!r}]")) is not None:
                return problem
        return None
    if kind in SEQUENCES:
        for i, item in enumerate(value):
            if (problem := plain_problem(item, f"{where}[{i}]")) is not None:
                return problem
        return None
    return f"{where} is a {kind.__module__}.{kind.__qualname__}"


def frame(data: bytes, fmt: int = FORMAT) -> bytes:
    """The file for a serialized payload: header line, checksum line, payload."""
    return PREFIX + str(fmt).encode() + b"\n" + hashlib.sha256(data).hexdigest().encode() + \
        b"\n" + data


def save_checkpoint(payload: Mapping[str, Any], path: Path) -> None:
    """Write ``payload`` atomically; it must be plain data (a bug otherwise, so TypeError)."""
    if (problem := plain_problem(payload)) is not None:
        raise TypeError(f"a checkpoint holds plain data only, and {problem}")
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    try:
        atomic_write(path, frame(buffer.getvalue()))
    except OSError as error:
        raise UserError(f"could not write checkpoint {path}: {error.strerror}",
                        "free some space, then run the same command again: it resumes "
                        "from the previous checkpoint, which is intact") from error


def what_it_is(head: bytes) -> str:
    """What a file that is not a gan_runner checkpoint looks like, from its first bytes."""
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors file (gan-export writes these: they hold a generator only)"
    if head.startswith(b"PK\x03\x04"):
        return "a PyTorch file written by another program (torch.save)"
    if head[:1] == b"\x80":
        return ("a Python pickle, e.g. a StyleGAN2-ADA network-snapshot .pkl (gan_runner "
                "loads no pickles: they can run code)")
    return "not a gan_runner checkpoint"


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[int, Any]:
    """The format and payload of a verified checkpoint; ``UserError`` if the file is not one."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"cannot read checkpoint {path}: {error.strerror}",
                        "check the path") from error
    header, _, rest = raw.partition(b"\n")
    digest, newline, data = rest[:_DIGEST_LEN], rest[_DIGEST_LEN:_DIGEST_LEN + 1], \
        rest[_DIGEST_LEN + 1:]
    if not raw.startswith(PREFIX):
        if PREFIX.startswith(raw):
            raise DamagedCheckpoint(f"checkpoint {path} is truncated ({len(raw)} bytes)",
                                    "use an earlier checkpoint from the same folder")
        raise UserError(f"{path} is {what_it_is(raw[:16])}",
                        "pass a ckpt-*.pt file written by gan-train")
    version = header[len(PREFIX):]
    if not version.isdigit() or len(digest) < _DIGEST_LEN or newline != b"\n":
        raise DamagedCheckpoint(f"checkpoint {path} has a damaged header",
                                "use an earlier checkpoint from the same folder")
    fmt = int(version)
    if not 1 <= fmt <= FORMAT:
        raise UserError(f"checkpoint {path} has format {fmt}, and this gan_runner reads "
                        f"formats 1 to {FORMAT}", "upgrade gan_runner to read it")
    if hashlib.sha256(data).hexdigest().encode() != digest:
        raise DamagedCheckpoint(f"checkpoint {path} is corrupt (checksum mismatch)",
                                "use an earlier checkpoint from the same folder")
    payload = torch_load_plain(data, f"checkpoint {path}", "it verifies, but was not written "
                               "by gan-train; pass a ckpt-*.pt file written by gan-train",
                               map_location, _FORMAT_1_GLOBALS if fmt == 1 else ())
    return fmt, payload


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """The payload of a verified checkpoint, as stored (see ``run_checkpoint`` for a run's)."""
    return read_checkpoint(path, map_location)[1]


def checkpoint_path(folder: Path, nimg: int) -> Path:
    return folder / f"ckpt-{nimg:09d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Newest first, by the image count in the name."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def latest_valid(folder: Path, load: Callable[[Path], T]) -> tuple[Path, T] | None:
    """The newest checkpoint that ``load`` reads; damaged newer ones are skipped with a
    warning. Any other refusal (a file that is unsafe, foreign or of a newer format) is not
    an accident of a crash, so it stops the search with its own message."""
    for path in list_checkpoints(folder):
        try:
            return path, load(path)
        except DamagedCheckpoint as error:
            log.warning("skipping %s", error)
    return None


def prune(folder: Path, keep: int, protect: set[Path] = frozenset()) -> None:
    """Keep the newest ``keep`` checkpoints (and any in ``protect``, e.g. the best one)."""
    for path in list_checkpoints(folder)[keep:]:
        if path not in protect:
            path.unlink(missing_ok=True)
