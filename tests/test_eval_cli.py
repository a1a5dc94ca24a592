"""``gan-eval``: a checkpoint against its training data, or two image folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_a_protocol_fixes_the_metrics_and_counts_gan_eval_would_otherwise_default():
    from gan_runner.cli.args import parse_args
    from gan_runner.cli.evaluate import SPEC, USAGE, metrics_config

    plain = metrics_config(parse_args([], SPEC, USAGE))
    assert plain.names == ["fid", "kid"] and plain.num_fakes == 10_000 and not plain.protocol
    cfg = metrics_config(parse_args(["protocol=fid50k_full,kid50k_full"], SPEC, USAGE))
    assert set(cfg.names) == {"fid", "kid"} and cfg.num_fakes == 50_000
    assert cfg.protocol == "fid50k_full,kid50k_full"


@pytest.mark.slow  # three gan-eval processes
def test_saved_statistics_give_the_same_fid_as_the_features(make_trainer, tmp_path):
    make_trainer(TINY_TOY).run()
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-*.pt"))[-1]
    first = gan_eval(f"ckpt={ckpt}", "metrics=fid", "num_fakes=300", "save_stats=s.npz",
                     "out=a.json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = gan_eval(f"ckpt={ckpt}", "metrics=fid", "num_fakes=300", "real_stats=s.npz",
                     "out=b.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert abs(a["fid"] - b["fid"]) <= 1e-12 * abs(a["fid"]) and b["real_stats"] == "s.npz"
    wrong = gan_eval(f"ckpt={ckpt}", "metrics=fid,kid", "real_stats=s.npz", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: metrics.real_stats gives")


def test_other_networks_weights_files_are_given_by_name():
    from gan_runner.cli.args import parse_args
    from gan_runner.cli.evaluate import SPEC, USAGE, metrics_config

    cfg = metrics_config(parse_args(["weights=vgg16:/w/vgg16.pth,dinov2:/w/model.safetensors"],
                                    SPEC, USAGE))
    assert cfg.weights == {"vgg16": "/w/vgg16.pth", "dinov2": "/w/model.safetensors"}
