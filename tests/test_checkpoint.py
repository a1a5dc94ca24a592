"""Checkpoints are complete and verified, or refused with a clear message."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_runner.core.errors import UserError
from gan_runner.storage.checkpoint import (
    FORMAT,
    checkpoint_path,
    frame,
    latest_valid,
    list_checkpoints,
    load_checkpoint,
    prune,
    read_checkpoint,
    save_checkpoint,
)

from conftest import TINY_TOY


def test_round_trip_preserves_tensors_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "ckpt-000000001.pt"
    save_checkpoint({"w": torch.arange(5.0), "n": 3}, path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["w"], torch.arange(5.0)) and loaded["n"] == 3
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_truncated_checkpoint_is_detected(tmp_path):
    path = tmp_path / "ckpt-000000001.pt"
    save_checkpoint({"w": torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(path)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(UserError, match="not a gan_runner checkpoint"):
        load_checkpoint(path)


def test_latest_valid_skips_a_corrupt_newest_checkpoint(tmp_path):
    for nimg in (10, 20):
        save_checkpoint({"nimg": nimg}, checkpoint_path(tmp_path, nimg))
    newest = checkpoint_path(tmp_path, 30)
    save_checkpoint({"nimg": 30}, newest)
    newest.write_bytes(newest.read_bytes()[:-3])
    path, payload = latest_valid(tmp_path, load_checkpoint)
    assert payload["nimg"] == 20 and path == checkpoint_path(tmp_path, 20)


def test_prune_keeps_the_newest_and_the_protected(tmp_path):
    for nimg in (1, 2, 3, 4):
        save_checkpoint({}, checkpoint_path(tmp_path, nimg))
    prune(tmp_path, keep=2, protect={checkpoint_path(tmp_path, 1)})
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "ckpt-000000004.pt", "ckpt-000000003.pt", "ckpt-000000001.pt"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt-000000001.pt"
    save_checkpoint({"version": 1}, path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gan_runner.core.paths.os.fsync", disk_full)
    with pytest.raises(UserError, match="No space left"):
        save_checkpoint({"version": 2}, path)
    assert load_checkpoint(path)["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_the_header_names_the_format_this_version_writes(tmp_path):
    path = tmp_path / "ckpt-000000001.pt"
    save_checkpoint({"n": 1}, path)
    assert path.read_bytes().startswith(b"GANRUNNER-CKPT-%d\n" % FORMAT)
    assert read_checkpoint(path) == (FORMAT, {"n": 1})


@pytest.mark.parametrize("value,where", [
    (np.zeros(3), "payload['rng']['numpy'] is a numpy.ndarray"),
    ({"p": np.float64(0.5)}, "payload['rng']['p'] is a numpy.float64"),
    ([Path("x")], "payload['rng'][0] is a pathlib"),
])
def test_a_payload_that_a_safe_reader_would_refuse_is_never_written(tmp_path, value, where):
    path = tmp_path / "ckpt-000000001.pt"
    nested = value if isinstance(value, dict | list) else {"numpy": value}
    with pytest.raises(TypeError, match=re.escape(where)):
        save_checkpoint({"rng": nested}, path)
    assert not path.exists()


def test_a_run_with_evaluations_saves_what_weights_only_reads_without_any_allowlist(
        make_trainer, tmp_path):
    """Counters, random states, metric history and best values are plain Python numbers."""
    make_trainer([*TINY_TOY, "metrics=toy", "metrics.num_fakes=256",
                  "metrics.every_kimg=0.064"]).run()
    newest = list_checkpoints(tmp_path / "run" / "checkpoints")[0]
    payload = torch.load(io.BytesIO(newest.read_bytes()[len(frame(b"")):]), weights_only=True)
    history = payload["state"]["history"]
    assert [(row["kind"], row["kimg"]) for row in history] == [("eval", 0.064), ("eval", 0.128)]
    assert {type(v) for row in history for v in row.values()} == {str, float}
    assert type(payload["state"]["best"]["kl"]["value"]) is float
    assert isinstance(payload["state"]["rng"]["numpy"]["key"], torch.Tensor)
