"""DINOv2 ViT-B/14 features (768-d CLS token): the space Stein et al. (2023) found to rank
modern generators as people do, where Inception's does not.

The architecture is timm's ``vit_base_patch14_dinov2`` built for 224x224 inputs (timm is the
``dinov2`` extra: ``pip install 'gan_runner[dinov2]'``); the input side is torch-fidelity's and
dgm-eval's: TF1 bilinear resize to 224, ImageNet mean/std; the feature is the final-norm CLS
token. The published weights are timm's safetensors conversion of Meta's LVD-142M checkpoint
(trained at 518 px: timm resamples its position embedding to 16x16 once, at load). Their
sha256 is not pinned here (it could not be verified from this machine), so they are not
downloaded: give the file as ``metrics.weights.dinov2=PATH`` (its hash goes into every row).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from gan_runner.core.errors import UserError
from gan_runner.metrics.features.base import FEATURES, ExtractorOptions, FeatureExtractor
from gan_runner.metrics.features.vgg16 import imagenet_input
from gan_runner.metrics.features.weights import file_sha256

INPUT_SIZE = 224
ARCH = "vit_base_patch14_dinov2"
WEIGHTS_URL = ("https://huggingface.co/timm/vit_base_patch14_dinov2.lvd142m/resolve/main/"
               "model.safetensors")
HINT = f"download {WEIGHTS_URL} yourself and pass metrics.weights.dinov2=PATH"


def _timm():
    try:
        import timm
    except ImportError:
        raise UserError("metrics.features=dinov2 needs timm",
                        "pip install 'gan_runner[dinov2]'") from None
    return timm


def dinov2_network(state_dict: Mapping[str, Tensor] | None = None):
    """timm's ViT-B/14 for 224 px, headless; ``state_dict`` in timm's names (any position
    embedding size: resampled to 16x16)."""
    timm = _timm()
    from timm.models.vision_transformer import checkpoint_filter_fn

    net = timm.create_model(ARCH, pretrained=False, num_classes=0, img_size=INPUT_SIZE)
    if state_dict is not None:
        try:
            net.load_state_dict(checkpoint_filter_fn(dict(state_dict), net))
        except RuntimeError as error:
            raise UserError(f"the DINOv2 weights do not fit timm's {ARCH}: {error}",
                            HINT) from error
    return net


class DinoV2Features(FeatureExtractor):
    """``features`` (N, 768): the CLS token after the final norm; no classifier."""

    def __init__(self, state_dict: Mapping[str, Tensor], sha256: str) -> None:
        super().__init__("dinov2", sha256, resize=f"tf_bilinear_{INPUT_SIZE}", feature_dim=768,
                         num_classes=None)
        self.net = dinov2_network(state_dict)
        self.freeze()

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"features": self.net(imagenet_input(images, INPUT_SIZE))}


def load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise UserError(f"cannot read the DINOv2 weights {path}: {error}", HINT) from None


@FEATURES.register("dinov2")
def build_dinov2(options: ExtractorOptions) -> DinoV2Features:
    given = options.weights.get("dinov2")
    if not given:
        raise UserError("metrics.features=dinov2 needs its weights file", HINT)
    path = Path(given).expanduser()
    if not path.is_file():
        raise UserError(f"metrics.weights.dinov2={given} is not a file", HINT)
    return DinoV2Features(load_safetensors(path), file_sha256(path))
