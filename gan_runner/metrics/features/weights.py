"""Finding the FID Inception weights: an explicit path, else the cache, else a verified download.

The file is pytorch-fid's port of TF's 2015-12-05 Inception graph, the network behind the FID
numbers papers report. Anything but those exact bytes gives incomparable numbers, so a
downloaded or cached file is checked against its SHA-256 before use; an explicitly given path
is trusted (it may be a deliberate re-conversion) but its hash still goes into every metric
row, so the difference stays visible.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

import torch

from gan_runner.core.errors import UserError
from gan_runner.core.paths import cache_base
from gan_runner.core.safe_load import torch_load_plain

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
# The full digest of that release file (95,628,359 bytes) as published with the same URL by
# mmgeneration's Inception utilities and by several independent checksum listings; it starts
# with the 8 hex digits torch.hub's check_hash convention embeds in the file name.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
HINT = ("download pt_inception-2015-12-05-6726825d.pth (pytorch-fid's FID weights) yourself "
        "and pass metrics.inception_weights=PATH")
_CHUNK = 1 << 20
log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, target: Path, sha256: str) -> None:
    """Fetch ``url`` to ``target`` through a temporary file in the same folder, renamed only
    once complete and verified: an interrupted or corrupt download never looks like a cached
    file to the next run."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".",
                                        suffix=".part")
    except OSError as error:
        raise UserError(f"cannot write the Inception weights to {target.parent}: {error}",
                        f"set metrics.cache_dir or $GAN_RUNNER_CACHE to a writable folder, or "
                        f"{HINT}") from error
    tmp = Path(tmp_name)
    log.info("downloading the FID Inception weights from %s to %s", url, target)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            announced, received = response.headers.get("Content-Length"), 0
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
        # a connection dropped mid-file just ends the stream; only the count tells
        if announced is not None and received != int(announced):
            raise OSError(f"the connection closed after {received} of {announced} bytes")
        if digest.hexdigest() != sha256:
            raise UserError(f"the Inception weights downloaded from {url} have sha256 "
                            f"{digest.hexdigest()}, expected {sha256}", HINT)
        os.replace(tmp, target)
    except (OSError, http.client.HTTPException, ValueError) as error:
        # OSError covers URLError, HTTP error codes and short reads, HTTPException a broken
        # response, ValueError a malformed URL
        raise UserError(f"could not download the Inception weights from {url}: {error}",
                        HINT) from error
    finally:
        tmp.unlink(missing_ok=True)


def locate_inception_weights(path: str | None, cache_dir: str | None,
                             url: str = FID_WEIGHTS_URL, sha256: str = FID_WEIGHTS_SHA256
                             ) -> tuple[Path, str]:
    """The weights file to use and its SHA-256: ``path`` if given, else the cached copy,
    else a download into the cache."""
    if path:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise UserError(f"metrics.inception_weights={path} is not a file", HINT)
        return explicit, file_sha256(explicit)
    cached = cache_base(cache_dir) / "weights" / url.rsplit("/", 1)[-1]
    if not cached.is_file():
        download(url, cached, sha256)
    elif (found := file_sha256(cached)) != sha256:
        raise UserError(f"the cached Inception weights {cached} have sha256 {found}, expected "
                        f"{sha256}", f"delete that file to download it again, or {HINT}")
    return cached, sha256


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors only (``weights_only``): a weights file from elsewhere must not run code."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read Inception weights from {path}: {error.strerror}",
                        HINT) from error
    return torch_load_plain(data, f"the Inception weights file {path}", HINT)
