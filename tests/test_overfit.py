"""The held-out split (dataset.heldout) and the r_v overfitting diagnostic logged from it."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from gan_runner.config.compose import compose_config, validated
from gan_runner.core.errors import UserError
from gan_runner.data.datasets import DATASETS
from gan_runner.data.images import ImageDatasetConfig, ImageSet, heldout_indices, subset_indices
from gan_runner.storage.runlog import read_rows
from gan_runner.train.overfit import OverfitProbe, heldout_set, overfit_probe

from conftest import TINY_FMNIST, needs_fmnist

SIDE = 8
LIMITED = ImageDatasetConfig(name="fashion_mnist", max_images=1000, heldout=500, subset_seed=3)


def noise_set(count: int, seed: int) -> ImageSet:
    """Uniform random uint8 images: every one different, none structured."""
    pixels = torch.randint(0, 256, (count, 1, SIDE, SIDE), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(seed))
    cfg = ImageDatasetConfig(name="noise", resolution=SIDE)
    return ImageSet(lambda idx: pixels[idx].clone(), count, cfg, "noise")


class NoiseG(nn.Module):
    """Fakes from the reals' own distribution (uniform in [-1, 1]) darkened by ``shift``: past
    that shift D can only tell its training reals from fakes by remembering them. The batch
    norm shows that r_v leaves running statistics alone."""

    z_dim = SIDE * SIDE

    def __init__(self, shift: float = 0.0) -> None:
        super().__init__()
        self.shift = shift
        self.norm = nn.BatchNorm1d(self.z_dim, affine=False)

    def forward(self, z: Tensor) -> Tensor:
        uniform = torch.erf(self.norm(z) / math.sqrt(2))
        return uniform.view(-1, 1, SIDE, SIDE) - self.shift


def mlp_d() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 256), nn.LeakyReLU(0.2),
                         nn.Linear(256, 1), nn.Flatten(0))


def memorize(D: nn.Module, G: nn.Module, train: ImageSet, steps: int, batch: int = 16) -> None:
    """Train D alone to score ``train`` real and fresh fakes fake."""
    opt = torch.optim.Adam(D.parameters(), lr=1e-3)
    bce = nn.functional.binary_cross_entropy_with_logits
    for _ in range(steps):
        reals = train.batch(torch.randperm(len(train))[:batch])
        with torch.no_grad():
            fakes = G(torch.randn(batch, G.z_dim))
        real_logits, fake_logits = D(reals), D(fakes)
        loss = (bce(real_logits, torch.ones_like(real_logits))
                + bce(fake_logits, torch.zeros_like(fake_logits)))
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_r_v_is_zero_when_the_held_out_images_are_the_training_images():
    torch.manual_seed(0)
    images = noise_set(64, seed=1)
    probe = OverfitProbe(images, images, batch_size=16, device=torch.device("cpu"))
    assert probe(NoiseG(), mlp_d())["augment/rv"] == pytest.approx(0, abs=1e-6)


def r_v_after_training(train_count: int, steps: int = 100) -> float:
    """r_v of a D trained on ``train_count`` images (batches of 16), with 256 held out."""
    torch.manual_seed(0)
    train, heldout = noise_set(train_count, seed=1), noise_set(256, seed=2)
    G, D = NoiseG(shift=0.1), mlp_d()
    memorize(D, G, train, steps)
    probe = OverfitProbe(train, heldout, batch_size=64, device=torch.device("cpu"))
    return probe(G, D)["augment/rv"]


def test_r_v_is_high_when_d_memorizes_a_tiny_set_and_low_when_it_cannot():
    """The same D training: 16 images are remembered within 100 steps, so held-out reals score
    like fakes; 512 images are not, and D scores held-out reals like training reals."""
    assert r_v_after_training(16) > 0.5
    assert r_v_after_training(512) < 0.25


def test_measuring_r_v_changes_neither_the_networks_nor_the_random_state():
    torch.manual_seed(0)
    G, D = NoiseG(), nn.Sequential(nn.Flatten(), nn.utils.parametrizations.spectral_norm(
        nn.Linear(SIDE * SIDE, 1)), nn.Flatten(0))
    probe = OverfitProbe(noise_set(32, 1), noise_set(32, 2), batch_size=8,
                         device=torch.device("cpu"))
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (G, D)]
    rng = torch.get_rng_state()
    probe(G, D)
    assert torch.equal(torch.get_rng_state(), rng)
    for module, saved in zip((G, D), before, strict=True):
        for key, value in module.state_dict().items():
            assert torch.equal(value, saved[key]), key


def test_held_out_images_are_outside_the_training_subset_and_do_not_change_it():
    train, held = subset_indices(60_000, LIMITED), heldout_indices(60_000, LIMITED)
    assert len(held) == 500 and len(set(held.tolist())) == 500
    assert not set(held.tolist()) & set(train.tolist())
    assert torch.equal(train, subset_indices(60_000, dataclasses.replace(LIMITED, heldout=0)))
    assert torch.equal(held, heldout_indices(60_000, LIMITED))  # fixed by subset_seed


@pytest.mark.parametrize("max_images", [None, 59_600])
def test_a_held_out_split_needs_images_left_outside_the_training_subset(max_images):
    cfg = dataclasses.replace(LIMITED, max_images=max_images)
    with pytest.raises(UserError, match=r"dataset\.heldout=500 needs images outside"):
        heldout_indices(60_000, cfg)


def test_a_negative_held_out_count_is_rejected_with_the_config():
    with pytest.raises(UserError, match=r"dataset\.heldout=-1 is not valid"):
        validated(compose_config(["dataset.heldout=-1"]))


def test_without_a_held_out_split_there_is_no_r_v():
    cfg = validated(compose_config(["metrics=none"]))
    assert heldout_set(cfg.dataset) is None
    assert overfit_probe(cfg, noise_set(4, 0), torch.device("cpu")) is None


def _digests(images: Tensor) -> set[str]:
    return {hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images}


@needs_fmnist
def test_fashion_mnist_held_out_images_are_not_training_images():
    cfg = dataclasses.replace(LIMITED, max_images=300, heldout=200)
    train = DATASETS.get("fashion_mnist")(cfg)
    held = heldout_set(cfg)
    assert len(train) == 300 and len(held) == 200
    train_images = train.uint8_batch(torch.arange(300))
    held_images = held.uint8_batch(torch.arange(200))
    assert held_images.shape[1:] == train_images.shape[1:] and len(_digests(held_images)) == 200
    assert not _digests(held_images) & _digests(train_images)


def test_every_train_row_logs_r_v_when_a_held_out_split_exists(make_trainer, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(12):
        Image.new("L", (16, 16), 20 * i).save(folder / f"{i}.png")
    tiny = [o for o in TINY_FMNIST if not o.startswith("dataset.")]
    trainer = make_trainer([*tiny, "dataset=image_folder", f"dataset.root={folder}",
                            "dataset.resolution=16", "dataset.max_images=8",
                            "dataset.heldout=4"])
    trainer.run()
    rows = [r for r in read_rows(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert len(rows) == 2
    assert all(math.isfinite(r["augment/rv"]) for r in rows)
