"""DINOv2 ViT-B/14 features (768-d CLS token): the space Stein et al. (2023) found to rank
modern generators as people do, where Inception's does not.

The architecture is timm's ``vit_base_patch14_dinov2`` built for 224x224 inputs (timm is the
``dinov2`` extra: ``pip install 'gan_runner[dinov2]'``); the input side is torch-fidelity's and
dgm-eval's: TF1 bilinear resize to 224, ImageNet mean/std; the feature is the final-norm CLS
token.

The weights: Meta's LVD-142M checkpoint, either as Meta publishes it
(``dinov2_vitb14_pretrain.pth``, the file torch-fidelity and dgm-eval fetch through torch.hub)
or as timm's safetensors conversion. Both were trained at 518 px, a 37x37 grid of position
embeddings; at 224 px the network sees 16x16. Meta's code resamples the grid at every
forward, bicubic without antialiasing and with a scale factor of (16 + 0.1) / 37 (a
floating-point kludge from DINO that it keeps for compatibility); that is what the published
DINOv2 distances were computed with, so this module resamples that way, once, at load.
timm's own resampling (antialiased, to exactly 16x16) would give other features
(docs/metrics.md has the measured difference).

Without ``metrics.weights.dinov2=PATH`` (either format), Meta's file is taken from the cache or
downloaded and checked against its sha256. That digest is not published by Meta; it is the one
pinned, with the file's size (346,378,731 bytes), by independent projects that downloaded it
(refiners' DINOv2 conversion among them), and it could not be recomputed from this machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_runner.core.errors import UserError
from gan_runner.metrics.features.base import FEATURES, ExtractorOptions, FeatureExtractor
from gan_runner.metrics.features.vgg16 import imagenet_input
from gan_runner.metrics.features.weights import load_state_dict, locate_weights

INPUT_SIZE, PATCH = 224, 14
GRID = INPUT_SIZE // PATCH
INTERPOLATE_OFFSET = 0.1  # DINOv2's interpolate_offset
ARCH = "vit_base_patch14_dinov2"
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth"
WEIGHTS_SHA256 = "0b8b82f85de91b424aded121c7e1dcc2b7bc6d0adeea651bf73a13307fad8c73"
TIMM_URL = ("https://huggingface.co/timm/vit_base_patch14_dinov2.lvd142m/resolve/main/"
            "model.safetensors")
HINT = (f"download {WEIGHTS_URL} (or timm's {TIMM_URL}) yourself and pass "
        "metrics.weights.dinov2=PATH")


def _timm():
    try:
        import timm
    except ImportError:
        raise UserError("metrics.features=dinov2 needs timm",
                        "pip install 'gan_runner[dinov2]'") from None
    return timm


def resample_position_embedding(pos_embed: Tensor) -> Tensor:
    """(1, 1 + M*M, D) -> (1, 1 + 16*16, D) as DINOv2's ``interpolate_pos_encoding`` does for
    a 224 px input: the CLS entry kept, the grid bicubic-interpolated in float32 without
    antialiasing, by the scale factor (16 + 0.1) / M (which PyTorch uses as given to place
    the samples, not the 16 / M implied by the output size)."""
    cls, grid = pos_embed[:, :1], pos_embed[:, 1:]
    side, dim = math.isqrt(grid.shape[1]), grid.shape[2]
    if side == GRID:
        return pos_embed
    scale = (GRID + INTERPOLATE_OFFSET) / side
    grid = F.interpolate(grid.float().reshape(1, side, side, dim).permute(0, 3, 1, 2),
                         scale_factor=(scale, scale), mode="bicubic", antialias=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, GRID * GRID, dim)
    return torch.cat([cls.float(), grid], 1).to(pos_embed.dtype)


def dinov2_network(state_dict: Mapping[str, Tensor] | None = None):
    """timm's ViT-B/14 for 224 px, headless; ``state_dict`` in Meta's or timm's names (they
    differ by Meta's unused ``mask_token``), its position embedding resampled as Meta's
    code does (then timm's loader, finding 16x16, resamples nothing)."""
    timm = _timm()
    from timm.models.vision_transformer import checkpoint_filter_fn

    net = timm.create_model(ARCH, pretrained=False, num_classes=0, img_size=INPUT_SIZE)
    if state_dict is not None:
        state = dict(state_dict)
        if "pos_embed" in state:
            state["pos_embed"] = resample_position_embedding(state["pos_embed"])
        try:
            net.load_state_dict(checkpoint_filter_fn(state, net))
        except RuntimeError as error:
            raise UserError(f"the DINOv2 weights do not fit timm's {ARCH}: {error}",
                            HINT) from error
    return net


class DinoV2Features(FeatureExtractor):
    """``features`` (N, 768): the CLS token after the final norm; no classifier. Its fast
    path is the fused resize (the patch convolution's layout hardly matters)."""

    has_fast_path = True

    def __init__(self, state_dict: Mapping[str, Tensor], sha256: str) -> None:
        super().__init__("dinov2", sha256, resize=f"tf_bilinear_{INPUT_SIZE}", feature_dim=768,
                         num_classes=None)
        self.net = dinov2_network(state_dict)
        self.freeze()

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"features": self.net(imagenet_input(images, INPUT_SIZE, self.fast))}


def load_dinov2_weights(path: Path) -> dict[str, Tensor]:
    """timm's ``.safetensors`` or Meta's ``.pth`` (tensors only: loaded with
    ``weights_only=True``, so the file cannot run code)."""
    if path.suffix != ".safetensors":
        return load_state_dict(path, "DINOv2 weights", HINT)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise UserError(f"cannot read the DINOv2 weights {path}: {error}", HINT) from None


@FEATURES.register("dinov2")
def build_dinov2(options: ExtractorOptions) -> DinoV2Features:
    _timm()  # before a 346 MB download, not after
    path, sha256 = locate_weights(options.weights.get("dinov2"), options.cache_dir, WEIGHTS_URL,
                                  WEIGHTS_SHA256, "metrics.weights.dinov2", HINT)
    return DinoV2Features(load_dinov2_weights(path), sha256)
