"""Check our DINOv2 extractor against Meta's own DINOv2 code on the same random weights, and
measure how far timm's default position-embedding resampling would move the features.

torch-fidelity and dgm-eval (the DINOv2 distances people quote) run Meta's model from
torch.hub, which cannot be installed from PyPI; this check needs a checkout of
https://github.com/facebookresearch/dinov2 (any recent commit) and the ``dinov2`` extra::

    git clone https://github.com/facebookresearch/dinov2 /tmp/dinov2
    python scripts/check_dinov2_parity.py --dinov2-source /tmp/dinov2

It builds Meta's ViT-B/14 as its hub does (518 px, layer scale 1.0), randomly initialised with
a position embedding of unit scale (Meta's init leaves it near zero, where its resampling would
not show), saves it as Meta's ``.pth``, and feeds the same uint8 images through
- Meta's model, preprocessed as torch-fidelity does (its TF1 bilinear resize and normalize);
- our extractor, reference and fast paths;
- timm's ViT loaded with timm's own resampling (antialiased, to 16x16), which ours replaces.
It prints each one's largest feature difference from Meta's, relative to the features' scale.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torchvision
from rich.console import Console
from rich.table import Table

from gan_runner.metrics.features import build_extractor
from gan_runner.metrics.features.dinov2 import ARCH, INPUT_SIZE


def meta_model(source: Path, seed: int) -> torch.nn.Module:
    sys.path.insert(0, str(source))
    from dinov2.hub.backbones import dinov2_vitb14

    torch.manual_seed(seed)
    model = dinov2_vitb14(pretrained=False).eval()
    with torch.no_grad():
        model.pos_embed.normal_(0, 1)
    return model


def fidelity_input(images: torch.Tensor) -> torch.Tensor:
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(INPUT_SIZE, INPUT_SIZE),
                                                  align_corners=False)
    return torchvision.transforms.functional.normalize(
        x, (255 * 0.485, 255 * 0.456, 255 * 0.406), (255 * 0.229, 255 * 0.224, 255 * 0.225))


def timm_resampled(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    net = timm.create_model(ARCH, pretrained=False, num_classes=0, img_size=INPUT_SIZE)
    net.load_state_dict(checkpoint_filter_fn(dict(state), net))
    return net.eval()


def random_images(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=generator) * 255
    noise = torch.randn(n, 3, 64, 64, generator=generator) * 20
    smooth = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic")
    return (smooth + noise).round().clamp(0, 255).to(torch.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dinov2-source", type=Path, required=True,
                        help="a checkout of facebookresearch/dinov2")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    images = random_images(args.images, args.seed)
    meta = meta_model(args.dinov2_source, args.seed)
    state = {k: v.contiguous() for k, v in meta.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        path = Path(tmp) / "dinov2_vitb14_pretrain.pth"
        torch.save(state, path)
        ours = build_extractor("dinov2", weights={"dinov2": str(path)})
        reference = meta(fidelity_input(images))
        rows = {"ours (reference path)": ours(images)["features"]}
        rows["ours (fast path: fused resize)"] = ours.use_fast_path()(images)["features"]
        rows["timm's own resampling (antialiased, 16x16)"] = timm_resampled(state)(
            fidelity_input(images))

    scale = reference.abs().max().item()
    table = Table(title=f"DINOv2 ViT-B/14 features against Meta's code ({args.images} images, "
                        f"random weights; max |feature| {scale:.3g})")
    for column in ("extractor", "max abs diff", "relative to max |feature|"):
        table.add_column(column, justify="left" if column == "extractor" else "right")
    for name, features in rows.items():
        diff = (features - reference).abs().max().item()
        table.add_row(name, f"{diff:.3g}", f"{diff / scale:.2e}")
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
