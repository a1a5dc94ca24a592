"""No file we load can run code, and a file that is not what we wrote is one line, exit 2.

A checkpoint's checksum proves only that the file is intact. These tests hand every command
that reads checkpoints a file with a valid header and checksum whose pickle would create a
marker file when unpickled by ``torch.load(weights_only=False)``: the marker never appears.
Then files that verify but hold something else, and a fuzz of damaged and re-signed files.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from test_cli import assert_one_line_error, run

from gan_runner.cli import evaluate, export, sample
from gan_runner.cli.errors import run_reporting_errors
from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.core.errors import UserError
from gan_runner.metrics.features.weights import load_state_dict
from gan_runner.storage.checkpoint import FORMAT, checkpoint_path, frame, load_checkpoint
from gan_runner.storage.run_checkpoint import RunCheckpoint
from gan_runner.train.loop import Trainer

from conftest import TINY_TOY

ROOT = Path(__file__).resolve().parents[1]
RUN = [*TINY_TOY, "model.hidden=16", "trainer.kimg=0.064"]


class MakesMarker:
    """Unpickled by a loader that runs code, this creates ``path`` (``open(path, 'w')``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
        return open, (str(self.path), "w")


def signed(payload: object, path: Path, fmt: int = FORMAT) -> Path:
    """``payload`` pickled by torch.save under a valid gan_runner header and checksum."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path.write_bytes(frame(buffer.getvalue(), fmt))
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run's directory (two toy steps); its checkpoint is ``LAST``."""
    run_dir = tmp_path_factory.mktemp("good") / "run"
    cfg = compose_config(RUN)
    Trainer(validated(cfg), run_dir, as_dict(cfg)).run()
    return run_dir


def last(run_dir: Path) -> Path:
    return checkpoint_path(run_dir / "checkpoints", 64)


def crafted(good: Path, folder: Path, fmt: int = FORMAT) -> tuple[Path, Path]:
    """(a signed checkpoint holding a real run's payload plus the marker pickle, the marker)."""
    marker = folder / "marker"
    payload = load_checkpoint(last(good))
    payload["state"]["best"] = {"fid": MakesMarker(marker)}
    return signed(payload, folder / "ckpt-000000128.pt", fmt), marker


def one_line_error(capsys: pytest.CaptureFixture[str], entry: Callable[[list[str]], object],
                   *argv: str) -> str:
    """Run a command's entry point in-process as its ``main`` does; it must exit 2 with one
    ``error:`` line. Returns that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run_reporting_errors(lambda: entry(list(argv)))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ---------------------------------------------------------------- code in a pickle
@pytest.mark.parametrize("fmt", [1, 2], ids=["format 1", "format 2"])
def test_a_crafted_checkpoint_is_refused_without_running_its_code(good, tmp_path, fmt):
    path, marker = crafted(good, tmp_path, fmt)
    for read in (load_checkpoint, RunCheckpoint.load):
        with pytest.raises(UserError, match=r"names Python code to run when it is loaded "
                                            r"\(\S*open\)"):
            read(path)
    assert not marker.exists()


def test_every_command_that_reads_checkpoints_refuses_a_crafted_one(good, tmp_path):
    """Real processes, one per way in; the run folder that auto-resume reads is a copy."""
    path, marker = crafted(good, tmp_path)
    run_dir = shutil.copytree(good, tmp_path / "run")
    shutil.copy(path, run_dir / "checkpoints" / path.name)  # the newest: auto-resume takes it
    more = [*RUN[:-1], "trainer.kimg=0.256"]
    commands = [
        ("gan-sample", f"ckpt={path}"),
        ("gan-eval", f"ckpt={path}", "metrics=toy", "num_fakes=100"),
        ("gan-export", f"ckpt={path}", "out=G.safetensors"),
        ("gan-train", *more, f"trainer.resume={path}", f"hydra.run.dir={tmp_path / 'new'}"),
        ("gan-train", *more, f"hydra.run.dir={run_dir}"),
    ]
    for command in commands:
        assert_one_line_error(run(*command, cwd=tmp_path), "names Python code to run")
    script = [sys.executable, str(ROOT / "scripts" / "probe_toy_critic.py"), str(path)]
    probe = subprocess.run(script, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert_one_line_error(probe, "names Python code to run")
    assert not marker.exists()
    assert not (tmp_path / "G.safetensors").exists()


def test_a_crafted_feature_weights_file_is_refused_without_running_its_code(tmp_path):
    marker, weights = tmp_path / "marker", tmp_path / "inception.pt"
    torch.save({"conv.weight": torch.zeros(1), "x": MakesMarker(marker)}, weights)
    with pytest.raises(UserError, match="names Python code") as caught:
        load_state_dict(weights)
    assert "\n" not in str(caught.value) and not marker.exists()


# ---------------------------------------------------------------- files that are not ours
def _payload_of_another_program(path: Path, good: Path) -> str:
    signed({"model": torch.nn.Linear(2, 2).state_dict(), "epoch": 3}, path)
    return "does not hold a gan-train run (no config, spec, state, version)"


def _a_list(path: Path, good: Path) -> str:
    signed([1, 2, 3], path)
    return "its payload is a list"


def _no_state(path: Path, good: Path) -> str:
    payload = load_checkpoint(last(good))
    del payload["state"]
    signed(payload, path)
    return "(no state)"


def _a_string_for_the_data_shape(path: Path, good: Path) -> str:
    payload = load_checkpoint(last(good))
    payload["spec"] = "2"
    signed(payload, path)
    return "its data shape is '2'"


def _the_wrong_data_shape(path: Path, good: Path) -> str:
    payload = load_checkpoint(last(good))
    payload["spec"] = [3]
    signed(payload, path)
    return "the G_ema weights in checkpoint"


def _strings_for_weights(path: Path, good: Path) -> str:
    payload = load_checkpoint(last(good))
    payload["state"]["G_ema"] = {key: "w" for key in payload["state"]["G_ema"]}
    signed(payload, path)
    return "do not fit its model"


def _an_unknown_model(path: Path, good: Path) -> str:
    payload = load_checkpoint(last(good))
    payload["config"]["model"]["name"] = "biggan_deep"
    signed(payload, path)
    return "describes a model that cannot be built: unknown model 'biggan_deep'"


def _a_bad_model_value(path: Path, good: Path) -> str:
    payload = load_checkpoint(last(good))
    payload["config"]["model"]["hidden"] = "wide"
    signed(payload, path)
    return "describes a model that cannot be built"


def _a_newer_format(path: Path, good: Path) -> str:
    signed(load_checkpoint(last(good)), path, FORMAT + 1)
    return f"has format {FORMAT + 1}, and this gan_runner reads formats 1 to {FORMAT}"


def _torch_save(path: Path, good: Path) -> str:
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    return "is a PyTorch file written by another program"


def _a_pickle(path: Path, good: Path) -> str:
    import pickle

    path.write_bytes(pickle.dumps({"G": None}))
    return "is a Python pickle"


def _foreign_safetensors(path: Path, good: Path) -> str:
    save_file({"w": torch.zeros(2)}, str(path))
    return "a safetensors file that gan-export did not write"


def _empty(path: Path, good: Path) -> str:
    path.write_bytes(b"")
    return "is truncated (0 bytes)"


FOREIGN = [_payload_of_another_program, _a_list, _no_state, _a_string_for_the_data_shape,
           _the_wrong_data_shape, _strings_for_weights, _an_unknown_model, _a_bad_model_value,
           _a_newer_format, _torch_save, _a_pickle, _foreign_safetensors, _empty]


@pytest.mark.parametrize("make", FOREIGN, ids=lambda f: f.__name__.strip("_").replace("_", " "))
def test_a_file_that_is_not_what_gan_train_wrote_is_one_line(good, tmp_path, capsys, make):
    path = tmp_path / "ckpt.pt"
    fragment = make(path, good)
    line = one_line_error(capsys, sample.sample, f"ckpt={path}", f"out={tmp_path / 'a.png'}")
    assert fragment in line
    assert not (tmp_path / "a.png").exists()


def test_resume_from_an_exported_generator_says_it_holds_no_training_state(good, tmp_path,
                                                                           capsys):
    exported = tmp_path / "G.safetensors"
    export.export([f"ckpt={last(good)}", f"out={exported}"])
    with pytest.raises(UserError, match=r"is a safetensors file \(gan-export writes these: they "
                                        r"hold a generator only"):
        RunCheckpoint.load(exported)


# ---------------------------------------------------------------- fuzz
def fuzz_positions(size: int, count: int) -> list[int]:
    """Every byte of the header lines, then ``count`` seeded positions over the rest."""
    rng = random.Random(0)
    return [*range(90), *sorted(rng.sample(range(90, size), count))]


def test_every_flipped_byte_or_cut_of_a_checkpoint_is_one_line_in_each_reader(good, tmp_path,
                                                                              capsys):
    data = last(good).read_bytes()
    path = tmp_path / "ckpt.pt"
    rng = random.Random(1)
    cases = [data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1:]
             for i in fuzz_positions(len(data), 150)]
    cases += [data[:n] for n in sorted({*range(0, 100, 7), *rng.sample(range(len(data)), 60)})]
    readers = [(sample.sample, f"out={tmp_path / 'a.png'}"),
               (export.export, f"out={tmp_path / 'G.safetensors'}"),
               (evaluate.evaluate, "metrics=toy", "num_fakes=64")]
    for i, damaged in enumerate(cases):
        path.write_bytes(damaged)
        entry, *rest = readers[i % len(readers)]
        one_line_error(capsys, entry, f"ckpt={path}", *rest)
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "G.safetensors").exists()


def test_a_resigned_damaged_payload_loads_or_is_one_line_never_a_traceback(good, tmp_path,
                                                                            capsys):
    """Flipped bytes under a recomputed checksum reach the unpickler and the model builder:
    each file either samples (a flipped weight is still a weight) or is refused in one line."""
    data = last(good).read_bytes()[len(frame(b"")):]
    path, out = tmp_path / "ckpt.pt", tmp_path / "a.png"
    rng = random.Random(2)
    outcomes = {"sampled": 0, "refused": 0}
    for i in sorted(rng.sample(range(len(data)), 300)):
        damaged = data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1:]
        path.write_bytes(frame(damaged))
        argv = [f"ckpt={path}", f"out={out}", "seeds=0-3"]
        try:
            run_reporting_errors(lambda argv=argv: sample.sample(argv))
            outcomes["sampled"] += 1
        except SystemExit as stop:
            lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
            assert stop.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
            outcomes["refused"] += 1
    assert outcomes["sampled"] > 0 and outcomes["refused"] > 0, outcomes  # both paths ran
