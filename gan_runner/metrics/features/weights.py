"""Finding the FID Inception weights: an explicit path, else the cache, else a verified download.

The file is pytorch-fid's port of TF's 2015-12-05 Inception graph, the network behind the FID
numbers papers report. Anything but those exact bytes gives incomparable numbers, so a
downloaded or cached file is checked against its SHA-256 before use; an explicitly given path
is trusted (it may be a deliberate re-conversion) but its hash still goes into every metric
row, so the difference stays visible.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gan_runner.core.download import download as fetch
from gan_runner.core.download import file_digest
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


def file_sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def download(url: str, target: Path, sha256: str,
             setting: str = "metrics.inception_weights") -> None:
    """Fetch the weights into the cache, verified (``core.download``: atomic, one-line
    failures that say where to put a copy fetched by hand, or which ``setting`` names one)."""
    fetch(url, target, what=f"the weights {target.name}", checksum=f"sha256:{sha256}",
          option=f"pass {setting}=PATH",
          folder_option="set metrics.cache_dir or $GAN_RUNNER_CACHE to a writable folder")


def hub_copy(name: str) -> Path:
    """Where torch.hub keeps a downloaded file: torchvision's VGG-16, pytorch-fid's Inception
    and the DINOv2 checkpoint that torch-fidelity and dgm-eval load all land there."""
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def locate_weights(path: str | None, cache_dir: str | None, url: str, sha256: str,
                   setting: str, hint: str) -> tuple[Path, str]:
    """A weights file and its SHA-256: ``path`` (the config's ``setting``) if given, else the
    cached copy, else torch.hub's copy if it has the expected bytes (a file another tool
    fetched is not fetched again; one that differs is not ours to judge, and is passed over),
    else a verified download into the cache."""
    if path:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise UserError(f"{setting}={path} is not a file", hint)
        return explicit, file_sha256(explicit)
    name = url.rsplit("/", 1)[-1]
    cached = cache_base(cache_dir) / "weights" / name
    if not cached.is_file():
        hub = hub_copy(name)
        if hub.is_file() and file_sha256(hub) == sha256:
            return hub, sha256
        download(url, cached, sha256, setting)
    elif (found := file_sha256(cached)) != sha256:
        raise UserError(f"the cached weights {cached} have sha256 {found}, expected "
                        f"{sha256}", f"delete that file to download it again, or {hint}")
    return cached, sha256


def locate_inception_weights(path: str | None, cache_dir: str | None,
                             url: str = FID_WEIGHTS_URL, sha256: str = FID_WEIGHTS_SHA256
                             ) -> tuple[Path, str]:
    """The FID Inception weights: ``metrics.inception_weights``, the cache or a download."""
    return locate_weights(path, cache_dir, url, sha256, "metrics.inception_weights", HINT)


def load_state_dict(path: Path, what: str = "Inception weights", hint: str = HINT
                    ) -> dict[str, torch.Tensor]:
    """Tensors only (``weights_only``): a weights file from elsewhere must not run code."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {what} from {path}: {error.strerror}", hint) from error
    return torch_load_plain(data, f"the {what} file {path}", hint)
