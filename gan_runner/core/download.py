"""Fetching a file from the network once: verified, atomic, and a failure that says what to do.

Every download (datasets, feature weights) goes through ``download``. A machine without a
network, a refused connection, a server error, a connection that drops mid-file and a file
with the wrong checksum all end in one ``UserError`` that names the URL, the folder the file
can be put into by hand and the option that points gan_runner at a copy: on a cluster node
without internet the fix is a ``scp`` away, and a traceback through urllib would not say so.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from gan_runner.core.errors import UserError

_CHUNK = 1 << 20
TIMEOUT_S = 60
log = logging.getLogger(__name__)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verified(path: Path, checksum: str | None) -> bool:
    """Whether ``path`` is a file whose digest is ``checksum`` (``"md5:..."``, ``"sha256:..."``;
    None: any file)."""
    if not path.is_file():
        return False
    if checksum is None:
        return True
    algorithm, _, expected = checksum.partition(":")
    return file_digest(path, algorithm) == expected


def _reason(error: BaseException) -> str:
    """What went wrong in a few words: urllib wraps the socket's error (``<urlopen error ...>``)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return getattr(reason, "strerror", None) or str(reason)
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def download(url: str, target: Path, *, what: str, option: str,
             folder_option: str = "set $GAN_RUNNER_CACHE to another folder",
             checksum: str | None = None) -> Path:
    """Fetch ``url`` to ``target`` through a temporary file in the same folder, renamed only once
    complete and verified: an interrupted or corrupt download never looks like a finished file
    to the next run.

    ``what`` names the file for people ("the FID Inception weights"), ``option`` is how to point
    gan_runner at a copy fetched some other way (``metrics.inception_weights=PATH``),
    ``folder_option`` how to download somewhere else, ``checksum`` the expected digest
    (``"sha256:<hex>"`` or ``"md5:<hex>"``; None: not checked).
    """
    by_hand = f"put {target.name} into {target.parent} yourself, or {option}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=".part")
    except OSError as error:
        raise UserError(f"cannot write {what} to {target.parent}: {_reason(error)}",
                        f"{folder_option}, or {option}") from error
    tmp = Path(tmp_name)
    log.info("downloading %s from %s to %s", what, url, target)
    algorithm, _, expected = (checksum or "sha256:").partition(":")
    digest = hashlib.new(algorithm)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            announced, received = response.headers.get("Content-Length"), 0
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
        # a connection dropped mid-file just ends the stream; only the count tells
        if announced is not None and received != int(announced):
            raise OSError(f"the connection closed after {received} of {announced} bytes")
        if expected and digest.hexdigest() != expected:
            raise UserError(f"{what} downloaded from {url} has {algorithm} "
                            f"{digest.hexdigest()}, expected {expected}", by_hand)
        os.replace(tmp, target)
    except (OSError, http.client.HTTPException, ValueError) as error:
        # OSError covers URLError (no network, refused), HTTP error codes, timeouts and short
        # reads; HTTPException a broken response; ValueError a malformed URL
        raise UserError(f"could not download {what} from {url}: {_reason(error)}",
                        by_hand) from error
    finally:
        tmp.unlink(missing_ok=True)
    return target
