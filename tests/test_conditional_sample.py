"""``gan-sample`` and ``gan-export`` with classes and codes: a class grid has one row per class
with its name beside it and the same seeds in every row, ``class=`` draws one class (also in
interpolation strips and style mixing, truncated towards the class's average), ``mode=codes``
sweeps one InfoGAN code, an exported generator keeps its class names, and every mistake is
one line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from run_files import write_run_checkpoint
from safetensors import safe_open

from gan_runner.cli import export, sample
from gan_runner.data.datasets import to_uint8
from gan_runner.data.fashion_mnist import CLASSES
from gan_runner.models.latents import latents_for_seeds
from gan_runner.storage.generator_file import load_generator

from conftest import TINY_FMNIST, TINY_TOY, needs_fmnist

TINY_STYLEGAN = [*(o for o in TINY_FMNIST if not o.startswith("model.")),
                 "model=stylegan2", "model.z_dim=8", "model.w_dim=8", "model.mapping_layers=2",
                 "model.channel_base=64", "model.channel_max=8"]
CELL = 33  # a 32 px image and its 1 px line


def gan_sample(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The ``gan-sample`` entry point in this process: exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["gan-sample", *args])
    try:
        sample.main()
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def projection(tmp_path_factory):
    return write_run_checkpoint([*TINY_FMNIST, "conditioning=projection"],
                                tmp_path_factory.mktemp("projection") / "ckpt.pt")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return write_run_checkpoint(TINY_FMNIST, tmp_path_factory.mktemp("plain") / "ckpt.pt")


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@needs_fmnist
def test_a_class_grid_has_a_named_row_per_class_and_the_same_seeds_in_each(
        projection, tmp_path, monkeypatch, capsys):
    out, pngs = tmp_path / "grid.png", tmp_path / "each"
    status, stdout, err = gan_sample(monkeypatch, capsys, f"ckpt={projection}", "classes=0-9",
                                     "per_class=4", f"out={out}", f"individual={pngs}")
    assert status == 0, err
    grid = png(out)
    assert grid.shape[0] == 10 * CELL + 1 and grid.shape[1] > 4 * CELL + 1  # the names' margin
    margin = grid.shape[1] - (4 * CELL + 1)
    assert grid[:, :margin].max() > 0  # the names are drawn there
    assert "10 classes x 4 samples" in stdout and "Ankle boot" in stdout
    trained = load_generator(projection, torch.device("cpu"))
    z = latents_for_seeds([2], trained.G)
    for k in (0, 7):
        expected = to_uint8(trained.G(z, torch.tensor([k])))[0].permute(1, 2, 0).numpy()
        assert np.array_equal(png(pngs / f"class{k:03d}-seed0002.png")[..., :1], expected)


@needs_fmnist
def test_a_conditional_grid_draws_every_class_by_default(projection, tmp_path, monkeypatch,
                                                         capsys):
    status, stdout, err = gan_sample(monkeypatch, capsys, f"ckpt={projection}",
                                     f"out={tmp_path / 'g.png'}")
    assert status == 0, err
    assert png(tmp_path / "g.png").shape[0] == 10 * CELL + 1
    assert f"10 classes x 8 samples: {', '.join(CLASSES)}" in stdout


@needs_fmnist
def test_one_class_draws_a_plain_grid_of_that_class(projection, tmp_path, monkeypatch,
                                                    capsys):
    status, stdout, err = gan_sample(monkeypatch, capsys, f"ckpt={projection}", "class=3",
                                     "seeds=0-3", f"out={tmp_path / 'g.png'}")
    assert status == 0, err
    assert "4 samples of class 3 (Dress)" in stdout
    assert png(tmp_path / "g.png").shape[:2] == (2 * CELL + 1, 2 * CELL + 1)


@needs_fmnist
@pytest.mark.parametrize("args, fragment", [
    (["classes=12"], "classes has class 12, and this generator has 10 classes (give classes "
                     "in 0-9)"),
    (["class=10"], "class has class 10"),
    (["mode=interp", "seeds=1,2"], "mode=interp of a class-conditional generator draws one "
                                   "class (add class=N (0-9))"),
    (["mode=codes"], "mode=codes sweeps InfoGAN's latent codes, and this generator has none"),
])
def test_classes_a_conditional_generator_does_not_have_are_one_line(
        projection, args, fragment, tmp_path, monkeypatch, capsys):
    status, stdout, err = gan_sample(monkeypatch, capsys, f"ckpt={projection}", *args,
                                     f"out={tmp_path / 'g.png'}")
    assert status == 2 and err.count("\n") == 1 and fragment in err, err
    assert "Traceback" not in stdout + err and not (tmp_path / "g.png").exists()


@needs_fmnist
@pytest.mark.parametrize("args", [["classes=0-3"], ["class=1"], ["per_class=4"]])
def test_classes_of_an_unconditional_checkpoint_are_one_line(plain, args, tmp_path,
                                                             monkeypatch, capsys):
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={plain}", *args,
                                f"out={tmp_path / 'g.png'}")
    assert status == 2 and err.count("\n") == 1
    assert ("draws classes, and this generator is not class-conditional (model=dcgan, "
            "conditioning=none)") in err


@pytest.mark.parametrize("args, fragment", [
    (["classes=0-3", "class=1"], "give classes= or class=, not both"),
    (["per_class=4", "seeds=0-3"], "give per_class= or seeds=, not both"),
    (["mode=interp", "seeds=1,2", "classes=1"], "classes= does not apply to mode=interp"),
    (["mode=codes", "class=1"], "class= does not apply to mode=codes"),
])
def test_contradicting_class_arguments_are_refused_before_reading(args, fragment, tmp_path,
                                                                  monkeypatch, capsys):
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={tmp_path / 'none.pt'}", *args)
    assert status == 2 and err.count("\n") == 1 and fragment in err, err


@needs_fmnist
def test_an_interpolation_strip_of_one_class(projection, tmp_path, monkeypatch, capsys):
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={projection}", "mode=interp",
                                "seeds=1,2,3", "steps=4", "class=5",
                                f"out={tmp_path / 'i.png'}")
    assert status == 0, err
    assert png(tmp_path / "i.png").shape[1] == 7 * CELL + 1


@needs_fmnist
def test_stylegan2_mixes_and_truncates_within_a_class(tmp_path, monkeypatch, capsys):
    ckpt = write_run_checkpoint([*TINY_STYLEGAN, "conditioning=projection"],
                                tmp_path / "ckpt.pt")
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "mode=mixing", "rows=0-1",
                                "cols=2-4", "class=4", "psi=0.7", f"out={tmp_path / 'm.png'}")
    assert status == 0, err
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "classes=0,9", "psi=0.5",
                                f"out={tmp_path / 'g.png'}")
    assert status == 0, err
    assert png(tmp_path / "g.png").shape[0] == 2 * CELL + 1


@needs_fmnist
def test_codes_vary_one_code_across_a_row_and_nothing_else(tmp_path, monkeypatch, capsys):
    ckpt = write_run_checkpoint([*TINY_FMNIST, "conditioning=infogan"], tmp_path / "ckpt.pt")
    status, stdout, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "mode=codes",
                                     "seeds=0-2", "code=0", f"out={tmp_path / 'c.png'}")
    assert status == 0, err
    assert png(tmp_path / "c.png").shape[0] == 3 * CELL + 1
    assert "3 seeds x 10 values of categorical code 0" in stdout
    status, stdout, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "mode=codes",
                                     "code=2", "steps=5", "span=1", f"out={tmp_path / 'd.png'}")
    assert status == 0, err
    assert "values of continuous code 2: -1, -0.5, 0, 0.5, 1" in stdout
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "mode=codes", "code=3")
    assert status == 2 and "code=3 is not one of this generator's 3 codes" in err


def test_a_class_grid_of_points_is_one_scatter_plot(tmp_path, monkeypatch, capsys):
    ckpt = write_run_checkpoint([*TINY_TOY, "conditioning=concat"], tmp_path / "ckpt.pt")
    status, stdout, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "classes=0-7",
                                     "per_class=50", f"out={tmp_path / 'p.png'}")
    assert status == 0, err
    assert "8 classes x 50 samples: mode 0," in stdout
    assert png(tmp_path / "p.png").shape == (512, 512, 3)


@needs_fmnist
def test_an_exported_conditional_generator_keeps_its_classes_and_draws_the_same_grid(
        projection, tmp_path, monkeypatch, capsys):
    exported = tmp_path / "G.safetensors"
    export.export([f"ckpt={projection}", f"out={exported}"])
    assert "conditioning=projection, 10 classes" in capsys.readouterr().out
    with safe_open(str(exported), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["format"] == "2"
    assert json.loads(metadata["classes"])["class_names"] == list(CLASSES)
    for name, ckpt in (("a", projection), ("b", exported)):
        status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "classes=2-4",
                                    "per_class=3", f"out={tmp_path / name}.png")
        assert status == 0, err
    assert np.array_equal(png(tmp_path / "a.png"), png(tmp_path / "b.png"))
    assert load_generator(exported, torch.device("cpu")).spec.class_names == CLASSES
