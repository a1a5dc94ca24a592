"""``gan-export`` writes a generator anyone can open safely, and it samples and evaluates as
the checkpoint it came from; checkpoints written by earlier versions (format 1) still resume
exactly, sample and export."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file
from test_cli import run
from test_safe_files import one_line_error
from test_sample import TINY_STYLEGAN

from gan_runner import __version__
from gan_runner.cli import evaluate, export, sample
from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.storage.checkpoint import checkpoint_path, read_checkpoint
from gan_runner.storage.run_checkpoint import RunCheckpoint
from gan_runner.train.loop import Trainer

from conftest import TINY_TOY, assert_same, needs_fmnist

FIXTURES = Path(__file__).parent / "fixtures"
# how tests/fixtures/format1-*.pt were made, by gan_runner 0.1.0 (commit 5c9a133), with
# OMP_NUM_THREADS=1: gan-train $FORMAT_1_RUN hydra.run.dir=run (its two checkpoints)
FORMAT_1_RUN = ["experiment=toy_ring8", "metrics=none", "trainer.batch_size=32",
                "trainer.kimg=0.128", "trainer.log_every_kimg=0.064",
                "trainer.snapshot_every_kimg=0.064", "model.hidden=16", "trainer.progress=false"]
FORMAT_1 = {nimg: FIXTURES / f"format1-toy_ring8-{nimg:09d}.pt" for nimg in (64, 128)}


def trained(overrides: list[str], run_dir: Path) -> Path:
    """The newest checkpoint of a run of ``overrides`` (in-process, as the CLI trains)."""
    cfg = compose_config(overrides)
    Trainer(validated(cfg), run_dir, as_dict(cfg), {"model": cfg.model.name}).run()
    return sorted((run_dir / "checkpoints").glob("ckpt-*.pt"))[-1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained([*TINY_TOY, "model.hidden=16"], tmp_path_factory.mktemp("toy") / "run")


# ---------------------------------------------------------------- gan-export
def test_export_holds_the_ema_weights_and_what_rebuilds_them(toy, tmp_path):
    out = tmp_path / "G.safetensors"
    export.export([f"ckpt={toy}", f"out={out}"])
    checkpoint = RunCheckpoint.load(toy)
    with safe_open(str(out), framework="pt") as f:
        metadata = f.metadata()
    assert_same(load_file(str(out)), dict(checkpoint.state["G_ema"]))
    assert json.loads(metadata["config"]) == checkpoint.config
    assert json.loads(metadata["spec"]) == [2] and float(metadata["kimg"]) == checkpoint.kimg
    assert json.loads(metadata["choices"]) == {"model": "mlp"}
    assert metadata["trained_with"] == metadata["exported_with"] == __version__
    assert json.loads(metadata["source"]) == {
        "checkpoint": toy.name, "sha256": hashlib.sha256(toy.read_bytes()).hexdigest()}
    assert out.stat().st_size < toy.stat().st_size / 2  # no D, optimizers or random state


def sample_bytes(ckpt: Path, out: Path, *argv: str) -> bytes:
    sample.sample([f"ckpt={ckpt}", f"out={out}", *argv])
    return out.read_bytes()


@pytest.mark.parametrize("model", [
    pytest.param([*TINY_TOY, "model.hidden=16"], id="mlp on points"),
    pytest.param(TINY_STYLEGAN, id="stylegan2 on images", marks=needs_fmnist),
])
def test_an_exported_generator_samples_the_checkpoints_pictures(model, tmp_path):
    ckpt = trained(model, tmp_path / "run")
    exported = tmp_path / "G.safetensors"
    export.export([f"ckpt={ckpt}", f"out={exported}"])
    assert (sample_bytes(exported, tmp_path / "e.png", "seeds=0-7")
            == sample_bytes(ckpt, tmp_path / "c.png", "seeds=0-7"))


def test_an_exported_generator_evaluates_as_its_checkpoint(toy, tmp_path):
    exported = tmp_path / "G.safetensors"
    export.export([f"ckpt={toy}", f"out={exported}"])
    argv = ["metrics=toy", "num_fakes=500"]
    from_ckpt = evaluate.evaluate([f"ckpt={toy}", *argv])
    from_file = evaluate.evaluate([f"ckpt={exported}", *argv])
    assert (from_ckpt["ckpt_kind"], from_file["ckpt_kind"]) == ("checkpoint", "safetensors")
    for key in ("modes", "hq", "kl", "kimg", "num_fakes"):
        assert from_file[key] == from_ckpt[key], key


def test_gan_export_is_a_command_that_names_what_it_wrote(toy, tmp_path):
    result = run("gan-export", f"ckpt={toy}", "out=G.safetensors", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote G.safetensors (EMA generator of model=mlp" in result.stdout
    assert (tmp_path / "G.safetensors").is_file()


@pytest.mark.parametrize("argv,fragment", [
    pytest.param(["out={tmp}/G.pt"], "should end in .safetensors", id="out without .safetensors"),
    pytest.param(["out={tmp}/G.safetensors", "ckpt={tmp}/E.safetensors"],
                 "is a safetensors file (gan-export writes these", id="an exported file"),
    pytest.param([], "missing out=", id="no out"),
])
def test_gan_export_refuses_in_one_line(toy, tmp_path, capsys, argv, fragment):
    export.export([f"ckpt={toy}", f"out={tmp_path / 'E.safetensors'}"])
    args = [f"ckpt={toy}", *(a.format(tmp=tmp_path) for a in argv)]
    assert fragment in one_line_error(capsys, export.export, *args)
    assert not (tmp_path / "G.safetensors").exists() and not (tmp_path / "G.pt").exists()


# ---------------------------------------------------------------- format 1 (gan_runner 0.1.0)
def test_the_format_1_fixtures_are_format_1():
    for path in FORMAT_1.values():
        assert path.read_bytes().startswith(b"GANRUNNER-CKPT-1\n")
        assert read_checkpoint(path)[0] == 1


def test_a_format_1_checkpoint_resumes_exactly_where_its_run_went_on(tmp_path):
    """A real gan-train process, one thread as when the fixtures were made: resumed from the
    64-image checkpoint, it reaches the 128-image checkpoint of the uninterrupted run."""
    result = run("gan-train", *FORMAT_1_RUN, f"trainer.resume={FORMAT_1[64]}", "hydra.run.dir=run",
                 cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    resumed = RunCheckpoint.load(checkpoint_path(tmp_path / "run" / "checkpoints", 128))
    uninterrupted = RunCheckpoint.load(FORMAT_1[128])
    assert resumed.format == 2 and uninterrupted.format == 1
    assert_same(resumed.state, uninterrupted.state)


def test_a_format_1_checkpoint_samples_and_exports(tmp_path):
    old = shutil.copy(FORMAT_1[128], tmp_path / "old.pt")
    exported = tmp_path / "G.safetensors"
    export.export([f"ckpt={old}", f"out={exported}"])
    assert (sample_bytes(exported, tmp_path / "e.png", "seeds=0-7")
            == sample_bytes(old, tmp_path / "c.png", "seeds=0-7"))
    with safe_open(str(exported), framework="pt") as f:
        assert json.loads(f.metadata()["choices"]) == {}  # format 1 did not record them
