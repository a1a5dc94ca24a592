"""The FID Inception extractor reproduces the reference tools, and its weights are found safely.

No weights can be downloaded here, so the parity tests build one random (but well-conditioned)
state dict, load it unchanged into pytorch-fid's FID Inception, into torch-fidelity's extractor
and into ours, and compare what each computes from the same uint8 images: features and logits
must agree in every resize mode with the tool that defines it.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gan_runner.core.errors import UserError
from gan_runner.metrics.features import build_extractor
from gan_runner.metrics.features.inception import (
    fused_fits,
    resize_pil_bicubic,
    resize_tf1_bilinear,
    resize_tf1_bilinear_fused,
)
from gan_runner.metrics.features.random_weights import write_random_inception_weights
from gan_runner.metrics.features.weights import locate_inception_weights

pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
fidelity_inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
fidelity_resize = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
cleanfid_resize = pytest.importorskip("cleanfid.resize")

# the same float32 ops on the same weights: on the development CPU the features are identical
# (max abs difference 0 in every resize mode). Enforced: 1e-6, which leaves room for another
# machine's conv kernels; a wrong pool, padding, resize or scaling gives > 1e-2
RTOL, ATOL = 1e-6, 1e-6


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random, well-conditioned weights with the FID weights file's keys
    (``random_inception_weights``)."""
    return write_random_inception_weights(tmp_path_factory.mktemp("weights") / "fid_inception.pth")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Three RGB uint8 images, non-square and not 299 px, so every resize really resamples."""
    generator = torch.Generator().manual_seed(1)
    coarse = torch.rand(3, 3, 6, 8, generator=generator) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(45, 61), mode="bicubic")
    noise = torch.randn(3, 3, 45, 61, generator=generator) * 20
    return (smooth + noise).round().clamp(0, 255).to(torch.uint8)


def pytorch_fid_model(weights_file: Path, **flags: bool) -> nn.Module:
    """pytorch-fid's FID InceptionV3 (2048-d block) with our weights in place of its download."""
    state = torch.load(weights_file, weights_only=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: state)
        return pytorch_fid_inception.InceptionV3([3], use_fid_inception=True, **flags).eval()


def ours(weights_file: Path, resize: str, images: torch.Tensor) -> dict[str, torch.Tensor]:
    extractor = build_extractor("inception", inception_weights=str(weights_file), resize=resize)
    with torch.no_grad():
        return extractor(images)


def assert_close(ours: torch.Tensor, reference: torch.Tensor) -> None:
    diff = (ours - reference).abs()
    print(f"max |ref| {reference.abs().max().item():.3g}, max abs diff {diff.max().item():.3g}, "
          f"max rel diff {(diff / reference.abs().clamp_min(1e-3)).max().item():.3g}")
    torch.testing.assert_close(ours, reference, rtol=RTOL, atol=ATOL)


def assert_informative(features: torch.Tensor) -> None:
    """Features that vary between images and across dimensions, so a match means something."""
    assert features.std(0).mean() > 1e-2 * features.abs().mean()
    assert (features > 0).float().mean() > 0.2


# ------------------------------------------------------------------ resize primitives
@pytest.mark.parametrize("size", [(37, 53), (512, 400)], ids=["upsample", "downsample"])
def test_tf_bilinear_resize_is_tensorflow1x_as_torch_fidelity_ports_it(size) -> None:
    x = torch.randint(0, 256, (2, 3, *size), generator=torch.Generator().manual_seed(2)).float()
    reference = fidelity_resize.interpolate_bilinear_2d_like_tensorflow1x(
        x, size=(299, 299), align_corners=False)
    assert torch.equal(resize_tf1_bilinear(x, 299), reference)


@pytest.mark.parametrize("shape", [(3, 37, 53), (1, 28, 28), (3, 299, 299)],
                         ids=["rgb", "gray", "same-size"])
def test_the_fused_resize_is_the_tf_bilinear_resize_and_scaling_to_rounding(shape) -> None:
    """The fast path's two matrix products give the gathers' image, scaled per channel (the
    ImageNet normalization) and gray made RGB by the broadcast: 2.4e-7 apart measured."""
    images = torch.randint(0, 256, (2, *shape), generator=torch.Generator().manual_seed(3),
                           dtype=torch.uint8)
    scale, shift = torch.tensor([1 / 128, 1 / 64, 1 / 255]).view(1, 3, 1, 1), torch.tensor(-1.0)
    expected = resize_tf1_bilinear(images.float(), 299).expand(-1, 3, -1, -1) * scale + shift
    got = resize_tf1_bilinear_fused(images, 299, scale, shift)
    assert got.shape == (2, 3, 299, 299)
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-6)


def test_the_fast_path_keeps_the_gathers_for_inputs_above_the_network_size() -> None:
    """Above 299 px the products cost more than the gathers (1.4x at 1024 px)."""
    small, large = torch.zeros(1, 3, 256, 64, dtype=torch.uint8), torch.zeros(1, 3, 300, 8,
                                                                              dtype=torch.uint8)
    assert fused_fits(small, 299) and not fused_fits(large, 299)


def test_clean_resize_is_clean_fids_pil_bicubic_on_float_channels(images) -> None:
    reference = np.stack([cleanfid_resize.build_resizer("clean")(image.permute(1, 2, 0).numpy())
                          for image in images]).transpose(0, 3, 1, 2)
    assert np.array_equal(resize_pil_bicubic(images, 299).numpy(), reference)


# ------------------------------------------------------------------ the whole extractor
def test_tf_bilinear_features_and_logits_match_torch_fidelity(weights_file, images) -> None:
    reference = fidelity_inception.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased", "logits"],
        feature_extractor_weights_path=str(weights_file))
    with torch.no_grad():
        ref_features, ref_logits, ref_logits_with_bias = reference(images)
    out = ours(weights_file, "tf_bilinear", images)
    assert out["features"].shape == (3, 2048) and out["logits"].shape == (3, 1008)
    assert out["features"].dtype == out["logits"].dtype == torch.float32
    assert_informative(ref_features)
    assert_close(out["features"], ref_features)
    # the logits Inception Score uses: torch-fidelity's and the original IS code's, bias-free
    assert_close(out["logits"], ref_logits)
    assert not torch.allclose(out["logits"], ref_logits_with_bias, rtol=RTOL, atol=ATOL)


def test_torch_bilinear_features_match_pytorch_fid(weights_file, images) -> None:
    with torch.no_grad():
        # pytorch-fid reads images with ToTensor (x / 255) and resizes inside the model
        reference = pytorch_fid_model(weights_file)(images.float() / 255)[0].flatten(1)
    assert_informative(reference)
    assert_close(ours(weights_file, "torch_bilinear", images)["features"], reference)


def test_clean_features_match_clean_fid_preprocessing_on_the_fid_network(weights_file,
                                                                         images) -> None:
    """clean-fid's own network is a TorchScript file that cannot be downloaded here; its
    ``clean`` mode is its resize followed by ``(x - 128) / 128`` into the same FID Inception."""
    resize = cleanfid_resize.build_resizer("clean")
    # clean-fid hands the network contiguous CHW tensors (ToTensor); the memory layout picks
    # the convolution kernel, so it matters in the last bits
    resized = torch.from_numpy(np.stack([resize(image.permute(1, 2, 0).numpy())
                                         for image in images])).permute(0, 3, 1, 2).contiguous()
    network = pytorch_fid_model(weights_file, resize_input=False, normalize_input=False)
    with torch.no_grad():
        reference = network((resized - 128) / 128)[0].flatten(1)
    assert_informative(reference)
    assert_close(ours(weights_file, "clean", images)["features"], reference)


def test_grayscale_is_read_as_rgb_with_three_equal_channels(weights_file) -> None:
    gray = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(3))
    extractor = build_extractor("inception", inception_weights=str(weights_file))
    with torch.no_grad():
        from_gray, from_rgb = extractor(gray), extractor(gray.expand(-1, 3, -1, -1))
    assert from_gray["features"].shape == (2, 2048) and from_gray["logits"].shape == (2, 1008)
    torch.testing.assert_close(from_gray, from_rgb)


def test_float_images_are_rejected_rather_than_silently_quantized(weights_file) -> None:
    extractor = build_extractor("inception", inception_weights=str(weights_file))
    with pytest.raises(ValueError, match="uint8"):
        extractor(torch.rand(1, 3, 32, 32))


def test_unknown_resize_mode_is_a_user_error_before_any_weights_are_fetched(tmp_path) -> None:
    with pytest.raises(UserError, match="resize"):
        build_extractor("inception", resize="bicubic", cache_dir=str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_weights_of_another_network_are_a_user_error(tmp_path) -> None:
    path = tmp_path / "other.pth"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(UserError, match="do not fit") as error:
        build_extractor("inception", inception_weights=str(path))
    assert "metrics.inception_weights=PATH" in error.value.hint


# ------------------------------------------------------------------ finding the weights
PAYLOAD = b"pretend weights " * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "weights-1234abcd.pth"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1: /NAME serves PAYLOAD, /truncated/NAME announces more bytes
    than it sends and closes, like a dropped connection."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in (f"/{NAME}", f"/truncated/{NAME}"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            truncated = self.path.startswith("/truncated")
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2] if truncated else PAYLOAD)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def unreachable(tmp_path) -> str:
    return (tmp_path / "nowhere" / NAME).as_uri()


def test_an_explicit_path_wins_over_cache_and_download(tmp_path, unreachable) -> None:
    (tmp_path / "cache" / "weights").mkdir(parents=True)
    (tmp_path / "cache" / "weights" / NAME).write_bytes(PAYLOAD)
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"a re-converted file")
    path, sha = locate_inception_weights(str(explicit), str(tmp_path / "cache"), unreachable,
                                         PAYLOAD_SHA)
    assert path == explicit
    assert sha == hashlib.sha256(b"a re-converted file").hexdigest()  # recorded, not rejected


def test_a_missing_explicit_path_is_a_user_error(tmp_path, unreachable) -> None:
    with pytest.raises(UserError, match="not a file"):
        locate_inception_weights(str(tmp_path / "typo.pth"), str(tmp_path), unreachable,
                                 PAYLOAD_SHA)


def test_a_verified_cached_copy_is_used_without_downloading(tmp_path, unreachable) -> None:
    cached = tmp_path / "weights" / NAME
    cached.parent.mkdir()
    cached.write_bytes(PAYLOAD)
    assert locate_inception_weights(None, str(tmp_path), unreachable, PAYLOAD_SHA) == (
        cached, PAYLOAD_SHA)


def test_the_cache_defaults_to_gan_runner_cache_env(tmp_path, unreachable, monkeypatch) -> None:
    monkeypatch.setenv("GAN_RUNNER_CACHE", str(tmp_path))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / NAME).write_bytes(PAYLOAD)
    path, _ = locate_inception_weights(None, None, unreachable, PAYLOAD_SHA)
    assert path == tmp_path / "weights" / NAME


def test_a_torch_hub_copy_with_the_right_bytes_is_used_without_downloading(
        tmp_path, unreachable, monkeypatch) -> None:
    """pytorch-fid, torchvision and torch-fidelity keep their downloads in torch.hub's folder;
    one with the expected sha256 serves, one with other bytes is passed over."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints" / NAME
    hub.parent.mkdir(parents=True)
    hub.write_bytes(PAYLOAD)
    assert locate_inception_weights(None, str(tmp_path / "cache"), unreachable,
                                    PAYLOAD_SHA) == (hub, PAYLOAD_SHA)
    hub.write_bytes(b"another file of that name")
    with pytest.raises(UserError, match="could not download"):
        locate_inception_weights(None, str(tmp_path / "cache"), unreachable, PAYLOAD_SHA)


def test_a_corrupt_cached_copy_is_a_user_error(tmp_path, unreachable) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / NAME).write_bytes(PAYLOAD[:-1])
    with pytest.raises(UserError, match="cached"):
        locate_inception_weights(None, str(tmp_path), unreachable, PAYLOAD_SHA)


@pytest.mark.parametrize("scheme", ["http", "file"])
def test_missing_weights_are_downloaded_into_the_cache(tmp_path, server, scheme) -> None:
    if scheme == "http":
        url = f"{server}/{NAME}"
    else:
        source = tmp_path / "mirror" / NAME
        source.parent.mkdir()
        source.write_bytes(PAYLOAD)
        url = source.as_uri()
    path, sha = locate_inception_weights(None, str(tmp_path / "cache"), url, PAYLOAD_SHA)
    assert path == tmp_path / "cache" / "weights" / NAME
    assert path.read_bytes() == PAYLOAD and sha == PAYLOAD_SHA
    assert [p.name for p in path.parent.iterdir()] == [NAME]  # no temporary file left behind


def test_a_download_with_the_wrong_hash_is_rejected_and_not_cached(tmp_path, server) -> None:
    with pytest.raises(UserError, match="sha256") as error:
        locate_inception_weights(None, str(tmp_path), f"{server}/{NAME}", "0" * 64)
    assert "metrics.inception_weights=PATH" in error.value.hint
    assert list((tmp_path / "weights").iterdir()) == []


@pytest.mark.parametrize("where", ["truncated", "missing", "refused"])
def test_a_failed_download_is_a_user_error_and_leaves_no_file(tmp_path, server, where) -> None:
    url = {"truncated": f"{server}/truncated/{NAME}", "missing": f"{server}/missing/{NAME}",
           "refused": f"http://127.0.0.1:9/{NAME}"}[where]  # port 9 (discard): nothing listens
    with pytest.raises(UserError, match="could not download") as error:
        locate_inception_weights(None, str(tmp_path), url, PAYLOAD_SHA)
    assert "metrics.inception_weights=PATH" in error.value.hint
    assert list((tmp_path / "weights").iterdir()) == []


def test_an_unwritable_cache_is_a_user_error(tmp_path, server) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    with pytest.raises(UserError, match="cannot write") as error:
        locate_inception_weights(None, str(not_a_folder), f"{server}/{NAME}", PAYLOAD_SHA)
    assert "metrics.cache_dir" in error.value.hint


@pytest.mark.slow  # ~10 s on the shared CPU
@pytest.mark.parametrize("gray", [False, True], ids=["rgb", "gray"])
def test_the_fast_path_gives_the_reference_features_to_1e4(weights_file, images, gray):
    """channels_last and the fused resize (the evaluator's fast path: 1.5x on a CPU) against
    the reference path, relative to the features' scale (1.5e-5 measured here)."""
    images = images[:, :1] if gray else images
    extractor = build_extractor("inception", inception_weights=str(weights_file))
    with torch.no_grad():
        reference = extractor(images)["features"]
    fast = extractor.use_fast_path()
    assert fast.fast and fast.extraction == "fast"
    assert fast.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = fast(images)["features"]
    scale = reference.abs().max()
    print(f"max abs diff {(got - reference).abs().max().item():.3g} of max {scale.item():.3g}")
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4 * scale.item())
