"""Checkpoints that are either complete and verified or not there at all.

A checkpoint is a small header (magic, sha256 of the payload) followed by the ``torch.save``
payload. It is written to a temporary file in the same folder, flushed to disk and renamed
over the target, so a crash leaves the previous file intact; the checksum catches files that
were truncated or damaged afterwards.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from gan_runner.errors import UserError

log = logging.getLogger(__name__)

MAGIC = b"GANRUNNER-CKPT-1\n"
_NAME = re.compile(r"ckpt-(\d+)\.pt$")


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode()
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + digest + b"\n" + data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise UserError(f"could not write checkpoint {path}: {error.strerror}",
                        "free some space, then run the same command again: it resumes "
                        "from the previous checkpoint, which is intact") from error


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The payload of a verified checkpoint; ``UserError`` if the file is not one."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"cannot read checkpoint {path}: {error.strerror}",
                        "check the path in trainer.resume") from error
    header_end = len(MAGIC) + 65
    if not raw.startswith(MAGIC) or len(raw) < header_end:
        raise UserError(f"{path} is not a gan_runner checkpoint",
                        "pass a ckpt-*.pt file written by gan-train")
    digest, data = raw[len(MAGIC):header_end - 1], raw[header_end:]
    if hashlib.sha256(data).hexdigest().encode() != digest:
        raise UserError(f"checkpoint {path} is corrupt (checksum mismatch)",
                        "use an earlier checkpoint from the same folder")
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)


def checkpoint_path(folder: Path, nimg: int) -> Path:
    return folder / f"ckpt-{nimg:09d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Newest first, by the image count in the name."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def latest_valid(folder: Path, map_location: str | torch.device = "cpu"
                 ) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; broken newer ones are skipped with a warning."""
    for path in list_checkpoints(folder):
        try:
            return path, load_checkpoint(path, map_location)
        except UserError as error:
            log.warning("skipping %s", error)
    return None


def prune(folder: Path, keep: int, protect: set[Path] = frozenset()) -> None:
    """Keep the newest ``keep`` checkpoints (and any in ``protect``, e.g. the best one)."""
    for path in list_checkpoints(folder)[keep:]:
        if path not in protect:
            path.unlink(missing_ok=True)
