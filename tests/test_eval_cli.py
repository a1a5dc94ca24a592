"""``gan-eval``: a checkpoint against its training data, or two image folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from gan_runner.data.images import ImageDatasetConfig, fashion_mnist_set

from conftest import TINY_TOY, needs_fmnist

BIN = Path(sys.executable).parent


def gan_eval(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "gan-eval"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"GAN_RUNNER_CACHE": str(cwd / "cache"),
                                                       "PATH": str(BIN)})


def write_pngs(folder: Path, images: torch.Tensor) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:03d}.png")


@needs_fmnist
def test_two_folders_of_the_same_images_have_zero_fid(tmp_path):
    test = fashion_mnist_set(ImageDatasetConfig(name="fashion_mnist", split="test",
                                                resolution=28))
    write_pngs(tmp_path / "real", test.uint8_batch(torch.arange(64)))
    write_pngs(tmp_path / "same", test.uint8_batch(torch.arange(64)))
    write_pngs(tmp_path / "other", test.uint8_batch(torch.arange(64, 128)))
    same = gan_eval("real=real", "fake=same", "features=fmnist", "metrics=fid,kid,is",
                    "out=same.json", cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    results = json.loads((tmp_path / "same.json").read_text())
    assert abs(results["fid"]) < 1e-4  # 0 up to round-off (64 samples, 128-d: rank-deficient)
    assert results["features"] == "fmnist" and results["num_fakes"] == 64
    assert results["features_sha256"] and results["real"] == "real"
    other = gan_eval("real=real", "fake=other", "features=fmnist", "out=other.json",
                     cwd=tmp_path)
    assert json.loads((tmp_path / "other.json").read_text())["fid"] > 1.0
    assert "fid" in other.stdout  # the table


def test_a_checkpoint_is_evaluated_against_its_training_data(make_trainer, tmp_path):
    make_trainer(TINY_TOY).run()
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-*.pt"))[-1]
    result = gan_eval(f"ckpt={ckpt}", "metrics=toy,fid", "num_fakes=500", "out=r.json",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert 0 <= results["modes"] <= 8 and results["kimg"] == 0.128
    assert results["num_fakes"] == 500 and results["features"] == "toy"


def test_eval_needs_a_checkpoint_or_two_folders(tmp_path):
    result = gan_eval("real=somewhere", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: give either ckpt=PATH or both real=DIR and fake=DIR")
