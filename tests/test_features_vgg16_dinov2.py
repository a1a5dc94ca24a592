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
from gan_runner.metrics.features.dinov2 import resample_position_embedding
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
    """channels_last, the fused resize and inference mode (the evaluator's path) against the
    plain one."""
    images = uint8_images(2)
    plain = build_extractor("vgg16", weights={"vgg16": str(vgg16_file)})
    with torch.no_grad():
        expected = plain(images)["features"]
    fast = plain.use_fast_path()
    assert fast.fast
    with torch.inference_mode():
        got = fast(images)["features"]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


timm = pytest.importorskip("timm")


def random_dinov2(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random ViT-B/14 as the published checkpoints hold it: 518 px, a 37x37 grid."""
    torch.manual_seed(seed)
    published = timm.create_model("vit_base_patch14_dinov2", pretrained=False, num_classes=0)
    with torch.no_grad():  # timm's init leaves the blocks (layer scale 1e-5) and the
        published.pos_embed.normal_(0, 1)  # position embedding near zero: make them matter
        for name, value in published.named_parameters():
            if name.endswith(".gamma"):
                value.fill_(1.0)
    return {k: v.contiguous() for k, v in published.state_dict().items()}


@pytest.mark.slow
def test_dinov2_loads_timm_weights_and_gives_768d_cls_features(tmp_path):
    """timm's safetensors conversion loads into the 224 px extractor, its features tell
    images apart, and the fast path (the fused resize) gives them to 1e-4."""
    from safetensors.torch import save_file

    published = random_dinov2()
    path = tmp_path / "model.safetensors"
    save_file(published, str(path))
    extractor = build_extractor("dinov2", weights={"dinov2": str(path)})
    with torch.no_grad():
        features = extractor(uint8_images(2))["features"]
    assert features.shape == (2, 768) and extractor.sha256 == file_sha256(path)
    assert torch.equal(extractor.net.cls_token, published["cls_token"])
    assert extractor.net.pos_embed.shape == (1, 1 + 16 * 16, 768)  # resampled from 37 x 37
    assert (features[0] - features[1]).abs().max() > 1e-5
    with torch.inference_mode():
        fast = extractor.use_fast_path()(uint8_images(2))["features"]
    torch.testing.assert_close(fast, features, rtol=1e-4, atol=1e-4 * features.abs().max())


def test_the_position_embedding_is_resampled_as_dinov2s_own_code_does_at_224px():
    """Meta's interpolate_pos_encoding at 224 px: CLS kept, the 37x37 grid bicubic without
    antialiasing by the scale factor (16 + 0.1) / 37, not timm's antialiased resize to
    16x16 (which the published DINOv2 distances were not computed with)."""
    pos_embed = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    grid = pos_embed[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, scale_factor=16.1 / 37, mode="bicubic")
    got = resample_position_embedding(pos_embed)
    assert got.shape == (1, 1 + 16 * 16, 8) and torch.equal(got[:, 0], pos_embed[:, 0])
    assert torch.equal(got[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 256, 8))
    timm_way = timm.layers.resample_abs_pos_embed(pos_embed, [16, 16], num_prefix_tokens=1)
    assert (timm_way - got).abs().max() > 0.1  # the two resamplings really differ
    assert torch.equal(resample_position_embedding(got), got)  # 16x16 already: unchanged


@pytest.mark.slow
def test_dinov2_loads_metas_own_checkpoint_format(tmp_path):
    """Meta's ``dinov2_vitb14_pretrain.pth`` (what torch.hub caches for torch-fidelity and
    dgm-eval): timm's names plus the unused ``mask_token``, read with weights_only."""
    published = random_dinov2()
    path = tmp_path / "dinov2_vitb14_pretrain.pth"
    torch.save({**published, "mask_token": torch.zeros(1, 768)}, path)
    extractor = build_extractor("dinov2", weights={"dinov2": str(path)})
    assert torch.equal(extractor.net.blocks[3].ls1.gamma, published["blocks.3.ls1.gamma"])
    assert extractor.sha256 == file_sha256(path)


def test_dinov2_weights_come_from_metas_url_checked_against_the_pinned_sha256(
        tmp_path, monkeypatch):
    """No path given: Meta's checkpoint from the cache, else downloaded; offline, one line
    says where to put a copy and which option names one."""
    import socket
    import urllib.error
    import urllib.request

    from gan_runner.metrics.features import dinov2

    assert dinov2.WEIGHTS_URL.endswith("/dinov2_vitb14/dinov2_vitb14_pretrain.pth")
    assert len(dinov2.WEIGHTS_SHA256) == 64

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(UserError) as error:
        build_extractor("dinov2", cache_dir=str(tmp_path))
    assert dinov2.WEIGHTS_URL in str(error.value)
    assert f"into {tmp_path / 'weights'} yourself" in error.value.hint
    assert "metrics.weights.dinov2=PATH" in error.value.hint
    impostor = tmp_path / "weights" / "dinov2_vitb14_pretrain.pth"
    impostor.parent.mkdir(exist_ok=True)  # the failed download left the folder, and no file
    impostor.write_bytes(b"not the checkpoint")
    with pytest.raises(UserError, match="have sha256"):
        build_extractor("dinov2", cache_dir=str(tmp_path))


def test_a_missing_dinov2_weights_path_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"metrics.weights.dinov2=.* is not a file"):
        build_extractor("dinov2", weights={"dinov2": str(tmp_path / "nowhere.pth")})
