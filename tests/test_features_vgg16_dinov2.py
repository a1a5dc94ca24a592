"""The VGG-16 and DINOv2 extractors: torch-fidelity's VGG-16 features on the same weights,
timm's DINOv2 behind the published weights' loader, and precision/recall in VGG-16's space on
natural images (issue 19, parts 2 and 4). Weights are random: none can be downloaded here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_runner.core.errors import UserError
from gan_runner.metrics.base import MetricsConfig
from gan_runner.metrics.features import build_extractor
from gan_runner.metrics.features.random_weights import random_vgg16_weights, write_weights
from gan_runner.metrics.features.weights import file_sha256
from gan_runner.metrics.prdc import pr_space

fidelity_vgg = pytest.importorskip("torch_fidelity.feature_extractor_vgg16")


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_weights(random_vgg16_weights(), tmp_path_factory.mktemp("w") / "vgg16.pth")


def uint8_images(n: int, channels: int = 3, size: tuple[int, int] = (40, 52)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    coarse = torch.rand(n, channels, 5, 6, generator=generator) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=size, mode="bicubic")
    return smooth.round().clamp(0, 255).to(torch.uint8)


@pytest.mark.slow  # 12 s: two 138M-parameter networks on the CPU
def test_vgg16_fc2_features_match_torch_fidelity_on_the_same_weights(vgg16_file):
    images = uint8_images(3)
    ours = build_extractor("vgg16", weights={"vgg16": str(vgg16_file)})
    reference = fidelity_vgg.FeatureExtractorVGG16("vgg16", ["fc2_relu"],
                                                   feature_extractor_weights_path=str(vgg16_file))
    with torch.no_grad():
        got = ours(images)["features"]
        (expected,) = reference(images)
    print(f"max abs diff {(got - expected).abs().max().item():.3g} "
          f"(max |ref| {expected.abs().max().item():.3g})")
    assert got.shape == (3, 4096) and ours.sha256 == file_sha256(vgg16_file)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert got.std(0).mean() > 0  # informative: the images are told apart


def test_the_vgg16_loader_refuses_a_missing_file_in_one_line(tmp_path):
    with pytest.raises(UserError, match=r"metrics.weights.vgg16=.* is not a file"):
        build_extractor("vgg16", weights={"vgg16": str(tmp_path / "none.pth")})


def test_precision_recall_read_vgg16_on_natural_images_and_the_main_space_elsewhere():
    cfg = MetricsConfig()
    assert pr_space(cfg, "inception") == "vgg16"
    assert pr_space(cfg, "fmnist") == "fmnist" and pr_space(cfg, "toy") == "toy"
    assert pr_space(MetricsConfig(pr_features="inception"), "inception") == "inception"


@pytest.mark.slow
def test_the_fast_path_gives_the_reference_features_to_1e4(vgg16_file):
    """channels_last + inference mode (the evaluator's path on CUDA) against the plain one."""
    images = uint8_images(2)
    plain = build_extractor("vgg16", weights={"vgg16": str(vgg16_file)})
    with torch.no_grad():
        expected = plain(images)["features"]
    fast = plain.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = fast(images)["features"]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


timm = pytest.importorskip("timm")


@pytest.mark.slow
def test_dinov2_loads_published_style_weights_and_gives_768d_cls_features(tmp_path):
    """A random ViT-B/14 saved as timm's 518 px checkpoint (a 37x37 position embedding) loads
    into the 224 px extractor, and its features tell images apart."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    published = timm.create_model("vit_base_patch14_dinov2", pretrained=False, num_classes=0)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in published.state_dict().items()}, str(path))
    extractor = build_extractor("dinov2", weights={"dinov2": str(path)})
    with torch.no_grad():
        features = extractor(uint8_images(2))["features"]
    assert features.shape == (2, 768) and extractor.sha256 == file_sha256(path)
    assert torch.equal(extractor.net.cls_token, published.cls_token)
    assert extractor.net.pos_embed.shape == (1, 1 + 16 * 16, 768)  # resampled from 37 x 37
    # a random ViT's CLS token is mostly its own embedding: small, but real, differences
    assert (features[0] - features[1]).abs().max() > 1e-5


def test_dinov2_without_its_weights_file_is_one_line():
    with pytest.raises(UserError, match=r"metrics.features=dinov2 needs its weights file"):
        build_extractor("dinov2")
