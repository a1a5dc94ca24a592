"""LPIPS reproduces the lpips package, and StyleGAN's path length and the diversity score are
computed as defined (issue 19, part 3).

No ImageNet backbone can be downloaded here, so the parity tests give the lpips package and our
network the same random torchvision backbone; the calibrated linear layers are the real v0.1
files, which ship inside the lpips package (their sha256 is the one our loader pins).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gan_runner.core.errors import UserError
from gan_runner.metrics.features.random_weights import (
    random_alexnet_weights,
    random_vgg16_weights,
    write_weights,
)
from gan_runner.metrics.features.weights import file_sha256
from gan_runner.metrics.lpips import (
    BACKBONES,
    LPIPS,
    build_lpips,
    filtered_mean,
    path_lengths,
    ppl_view,
)

lpips_package = pytest.importorskip("lpips")
RANDOM = {"alex": random_alexnet_weights, "vgg": random_vgg16_weights}


def package_linear(net: str) -> Path:
    return Path(str(importlib.resources.files("lpips") / "weights" / "v0.1" / f"{net}.pth"))


def reference(net: str, backbone: dict[str, torch.Tensor]) -> nn.Module:
    """The lpips package's LPIPS with its v0.1 linear layers and our random backbone."""
    model = lpips_package.LPIPS(net=net, pnet_rand=True, verbose=False)
    for part in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4,
                 model.net.slice5):
        part.load_state_dict({name: backbone[f"features.{name}"]
                              for name in part.state_dict()})
    return model.eval()


def images(n: int, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=generator) * 2 - 1
    return nn.functional.interpolate(coarse, size=(size, size), mode="bicubic").clamp(-1, 1)


@pytest.mark.parametrize("net", ["alex", pytest.param("vgg", marks=pytest.mark.slow)])
def test_lpips_matches_the_lpips_package_on_the_same_weights(net, tmp_path):
    backbone = RANDOM[net]()
    linear = torch.load(package_linear(net), map_location="cpu", weights_only=True)
    ours = LPIPS(net, backbone, linear)
    x0, x1 = images(4, 64, 0), images(4, 64, 1)
    with torch.no_grad():
        expected = reference(net, backbone)(x0, x1).flatten()
        got = ours(x0, x1)
    print(f"{net}: max rel diff {((got - expected).abs() / expected).max().item():.2e}")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    assert (got > 0).all() and ours(x0, x0).abs().max() < 1e-6


def test_the_loader_pins_the_published_linear_layers_and_takes_explicit_files(tmp_path):
    for net, spec in BACKBONES.items():
        assert file_sha256(package_linear(net)) == spec.linear_sha256
    backbone = write_weights(random_alexnet_weights(), tmp_path / "alexnet.pth")
    network = build_lpips("alex", {"alexnet": str(backbone),
                                   "lpips_alex": str(package_linear("alex"))}, None)
    assert network.sha256.startswith(file_sha256(backbone)[:16])
    with pytest.raises(UserError, match=r"metrics.weights.alexnet=.* is not a file"):
        build_lpips("alex", {"alexnet": str(tmp_path / "missing.pth")}, None)


def test_the_filtered_mean_drops_what_lies_outside_the_1st_to_99th_percentiles():
    values = np.concatenate([np.arange(1.0, 101.0), [1e9]])
    assert filtered_mean(values) == pytest.approx(np.arange(2.0, 101.0).mean())


def test_the_ppl_view_crops_the_centre_and_pools_down_to_256px():
    x = torch.zeros(1, 3, 1024, 1024)
    x[..., 384:896, 256:768] = 1.0  # exactly the crop
    view = ppl_view(x, crop=True)
    assert view.shape[-2:] == (256, 256) and bool((view == 1).all())
    assert ppl_view(torch.zeros(1, 3, 64, 64), crop=False).shape[-1] == 64


class SmoothGenerator(nn.Module):
    """Images that move smoothly with z: a fixed linear map, upsampled, squashed by tanh."""

    z_dim = 8

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.map = nn.Linear(8, 3 * 8 * 8)
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = (self.scale * self.map(z)).view(-1, 3, 8, 8)
        return torch.tanh(nn.functional.interpolate(x, size=(64, 64), mode="bilinear"))


def test_path_length_grows_with_how_fast_images_change_and_is_zero_for_a_constant():
    torch.manual_seed(0)
    network = LPIPS("alex", random_alexnet_weights(),
                    torch.load(package_linear("alex"), map_location="cpu", weights_only=True))
    G = SmoothGenerator()
    common = dict(count=16, space="z", epsilon=1e-2, crop=False, batch_size=8, seed=0, psi=1.0,
                  device=torch.device("cpu"))
    slow = path_lengths(G, network, sampling="full", **common)
    G.scale = 2.0
    fast = path_lengths(G, network, sampling="full", **common)
    G.scale = 0.0
    still = path_lengths(G, network, sampling="full", **common)
    assert (slow > 0).all() and filtered_mean(fast) > 1.2 * filtered_mean(slow)
    assert np.abs(still).max() < 1e-3
    with pytest.raises(UserError, match=r"PPL in W needs a generator with a mapping network"):
        path_lengths(G, network, sampling="end", **{**common, "space": "w"})


def test_the_evaluator_runs_path_length_and_diversity_on_the_generator(tmp_path):
    from gan_runner.data.toy import ToyDatasetConfig
    from gan_runner.metrics.base import MetricsConfig
    from gan_runner.metrics.evaluate import Evaluator

    backbone = write_weights(random_alexnet_weights(), tmp_path / "alexnet.pth")
    cfg = MetricsConfig(names=["ppl_zend", "diversity"], lpips_net="alex", ppl_samples=8,
                        diversity_pairs=8, batch_size=8, cache_dir=str(tmp_path),
                        weights={"alexnet": str(backbone),
                                 "lpips_alex": str(package_linear("alex"))})
    data = ToyDatasetConfig(name="toy_ring8", num_samples=100, std=0.02, seed=1)
    evaluator = Evaluator.for_dataset(cfg, data, torch.device("cpu"))
    assert evaluator.extractors == {} and evaluator.work(100) == 0  # no features to extract
    torch.manual_seed(0)
    row = evaluator(SmoothGenerator())
    assert row["ppl_zend"] > 0 and row["lpips_diversity"] > 0
    assert row["lpips"] == "alex v0.1" and row["ppl_epsilon"] == 1e-4 and row["ppl_samples"] == 8
