"""The loggers: ``logger=[tensorboard,wandb,mlflow,csv]`` picks several at once; each gets the
rows, pictures and provenance, a resumed run logs each step once, and a missing library is one
line naming its extra. W&B runs offline and is read back from its run file, MLflow from its
local store with the MLflow client."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from torch import nn

from gan_runner.config.compose import compose_config, validated
from gan_runner.core.errors import UserError
from gan_runner.storage.loggers import LOGGERS, Logger, MlflowConfig, WandbConfig
from gan_runner.storage.runlog import PROVENANCE_FILE, RunLog, read_rows

from conftest import TINY_FMNIST, needs_fmnist

CONF = Path(__file__).resolve().parents[1] / "conf" / "logger"
CONFIG = {"trainer": {"kimg": 4, "seed": 0}, "loss": {"name": "hinge"}}
TRAIN = [{"kind": "train", "kimg": k, "loss/D": 1.0 + k, "loss/G": 2.0 - k} for k in (1, 2, 3)]
EVAL = {"kind": "eval", "kimg": 2.0, "fid": 42.5, "features": "toy", "num_fakes": 100}


def log_a_run(run_dir: Path, loggers: Any, resume_kimg: float | None = None,
              rows: list[dict[str, Any]] = TRAIN) -> None:
    """What the training loop logs: the reals, rows, an evaluation, a grid, histograms."""
    run_dir.mkdir(parents=True, exist_ok=True)
    runlog = RunLog(run_dir, resume_kimg=resume_kimg, loggers=loggers, config=CONFIG,
                    provenance={"device": "cpu"})
    if resume_kimg is None:
        runlog.image("reals", np.zeros((8, 8, 3), np.uint8), 0)
    for row in rows:
        if row["kimg"] > (resume_kimg or 0):
            runlog.write(row)
            if row["kimg"] == EVAL["kimg"]:
                runlog.write(EVAL)
                runlog.image("fakes", np.full((8, 12, 3), 200, np.uint8), row["kimg"])
                runlog.histograms("G", nn.Linear(2, 2), row["kimg"])
    runlog.close()


# ---------------------------------------------------------------- the group
def test_each_registered_logger_is_an_option_of_the_logger_group():
    options = {path.stem for path in CONF.glob("*.yaml")} - {"none"}
    assert options == set(LOGGERS.names()) == {"tensorboard", "wandb", "mlflow", "csv"}


@pytest.mark.parametrize("override,chosen", [
    ([], ["tensorboard"]),  # today's default
    (["logger=[tensorboard,wandb]"], ["tensorboard", "wandb"]),
    (["logger=[csv,mlflow]"], ["csv", "mlflow"]),
    (["logger=none"], []),
    (["logger=[]"], []),
])
def test_loggers_combine_as_a_list(override, chosen):
    assert list(validated(compose_config(override)).logger) == chosen


def test_an_unknown_logger_is_refused_with_the_choices():
    with pytest.raises(Exception, match="logger/wandbb"):
        compose_config(["logger=[wandbb]"])
    with pytest.raises(UserError, match="unknown logger 'wandbb'") as error:
        RunLog(Path("unused"), loggers=["wandbb"])
    assert "csv, mlflow, tensorboard, wandb" in error.value.hint


def test_a_missing_library_is_one_line_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(UserError) as error:
        validated(compose_config(["logger=[tensorboard,wandb]"]))
    assert str(error.value) == ("logger=wandb needs the wandb package, which is not installed "
                                "(pip install 'gan_runner[wandb]', or leave wandb out of "
                                "logger=)")


def test_a_library_that_fails_to_import_is_the_same_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # ``import mlflow`` raises ImportError
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    with pytest.raises(UserError, match=r"logger=mlflow needs the mlflow package.*"
                                        r"gan_runner\[mlflow\]"):
        RunLog(tmp_path, loggers=["mlflow"])


def test_without_tensorboard_the_default_run_logs_to_metrics_jsonl_only(tmp_path, monkeypatch,
                                                                         caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with caplog.at_level(logging.INFO):
        log_a_run(tmp_path, ["tensorboard"])
    assert "tensorboard is not installed" in caplog.text
    assert len(read_rows(tmp_path / "metrics.jsonl")) == 4
    assert not (tmp_path / "tensorboard").exists()


def test_the_old_call_still_logs_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    runlog = RunLog(tmp_path, resume_kimg=None)
    assert runlog.loggers == ["tensorboard"]
    runlog.close()


# ---------------------------------------------------------------- provenance
def test_each_start_of_a_run_adds_its_provenance(tmp_path):
    log_a_run(tmp_path, [])
    log_a_run(tmp_path, [], resume_kimg=2.0)
    first, resumed = (json.loads(line) for line in
                      (tmp_path / PROVENANCE_FILE).read_text().splitlines())
    for record in (first, resumed):
        assert {"command", "started", "gan_runner", "torch", "python", "host"} <= set(record)
        assert record["device"] == "cpu"  # what the caller adds
    assert (first["resumed_at_kimg"], resumed["resumed_at_kimg"]) == (None, 2.0)


def test_a_start_that_logs_no_row_leaves_the_provenance_as_it_was(tmp_path):
    log_a_run(tmp_path, [])
    before = (tmp_path / PROVENANCE_FILE).read_bytes()
    RunLog(tmp_path, resume_kimg=3.0, loggers=[]).close()  # e.g. a bad image in the 1st batch
    assert (tmp_path / PROVENANCE_FILE).read_bytes() == before


# ---------------------------------------------------------------- a failing backend
class FlakyLogger(Logger):
    """A logger whose server goes away after the first row."""

    failures = (ConnectionError,)
    rows: ClassVar[list[float]] = []

    def write(self, row, step):
        if self.rows:
            raise ConnectionError("the server went away")
        self.rows.append(row["kimg"])


def test_a_logger_whose_backend_fails_is_dropped_and_the_run_goes_on(tmp_path, caplog):
    LOGGERS.register("flaky")(FlakyLogger)
    try:
        with caplog.at_level(logging.WARNING):
            log_a_run(tmp_path, ["flaky", "csv"])
    finally:
        LOGGERS.unregister("flaky")
    assert FlakyLogger.rows == [1]
    assert "logger flaky failed (the server went away)" in caplog.text
    assert len(read_csv(tmp_path / "csv" / "train.csv")) == 3  # the others kept logging


# ---------------------------------------------------------------- CSV
def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_holds_a_table_per_kind_of_row_with_provenance_columns(tmp_path):
    log_a_run(tmp_path, ["csv"])
    train = read_csv(tmp_path / "csv" / "train.csv")
    assert [r["kimg"] for r in train] == ["1", "2", "3"]
    assert train[1]["loss/D"] == "3.0"
    assert read_csv(tmp_path / "csv" / "eval.csv") == [
        {"kimg": "2.0", "fid": "42.5", "features": "toy", "num_fakes": "100"}]


def test_a_new_key_widens_the_csv_and_missing_values_stay_empty(tmp_path):
    runlog = RunLog(tmp_path, loggers=["csv"])
    runlog.write({"kind": "train", "kimg": 1.0, "loss/D": 1.0})
    runlog.write({"kind": "train", "kimg": 2.0, "loss/D": float("nan"), "augment/p": 0.1})
    runlog.close()
    assert read_csv(tmp_path / "csv" / "train.csv") == [
        {"kimg": "1.0", "loss/D": "1.0", "augment/p": ""},
        {"kimg": "2.0", "loss/D": "", "augment/p": "0.1"}]


def test_a_resumed_run_rewrites_the_csv_from_metrics_jsonl(tmp_path):
    log_a_run(tmp_path, ["csv"])
    changed = [{**row, "loss/D": -1.0} for row in TRAIN]  # what the replay logs instead
    log_a_run(tmp_path, ["csv"], resume_kimg=1.0, rows=changed)
    assert [r["loss/D"] for r in read_csv(tmp_path / "csv" / "train.csv")] == ["2.0", "-1.0",
                                                                              "-1.0"]
    assert len(read_csv(tmp_path / "csv" / "eval.csv")) == 1


# ---------------------------------------------------------------- W&B, offline
BLOCK = 32768  # the .wandb file: LevelDB-log records of wandb's protobuf Record


def wandb_records(path: Path) -> list[Any]:
    """Every record of an offline run's ``run-<id>.wandb`` file, parsed with wandb's own
    protobuf classes: a 7-byte header (":W&B", magic, version), then LevelDB log blocks whose
    records (4-byte CRC, 2-byte length, 1-byte type: full, first, middle, last) carry them."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, position, parts = [], 7, b""
    while position + 7 <= len(data):
        room = BLOCK - position % BLOCK
        if room < 7:  # too little room for a header: padding up to the next block
            position += room
            continue
        length, kind = int.from_bytes(data[position + 4:position + 6], "little"), data[position + 6]
        if position + 7 + length > len(data):  # still being written
            break
        parts += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last part of one
            records.append(wandb_internal_pb2.Record.FromString(parts))
            parts = b""
    return records


def items(updates) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in updates}


def finished_records(path: Path, timeout_s: float = 60.0) -> list[Any]:
    """The records once the run's exit record is in: ``finish()`` can return before wandb's
    service process has written the file."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record"
        time.sleep(0.1)


def read_wandb(run_dir: Path) -> list[dict[str, Any]]:
    """Each offline session of the run: its id, config, history rows and summary."""
    sessions = []
    for path in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        config, history, summary, run_id = {}, [], {}, None
        for record in finished_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run_id = record.run.run_id
                config.update(items(record.run.config.update))
            elif kind == "config":
                config.update(items(record.config.update))
            elif kind == "history":
                history.append(items(record.history.item))
            elif kind == "summary":
                summary.update(items(record.summary.update))
        sessions.append({"id": run_id, "config": config, "history": history,
                         "summary": summary, "folder": path.parent})
    return sessions


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):  # not in ~
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))


def test_wandb_offline_run_holds_config_scalars_grids_and_provenance(tmp_path, wandb_offline):
    run_dir = tmp_path / "run"
    log_a_run(run_dir, ["wandb"])
    [session] = read_wandb(run_dir)
    assert session["config"]["trainer"] == {"kimg": 4, "seed": 0}
    provenance = session["config"]["provenance"]
    assert provenance["device"] == "cpu" and provenance["gan_runner"]
    losses = [(row["_step"], row["loss/D"]) for row in session["history"] if "loss/D" in row]
    assert losses == [(1000, 2.0), (2000, 3.0), (3000, 4.0)]
    at_2000 = next(row for row in session["history"] if row["_step"] == 2000)
    assert at_2000["fid"] == 42.5 and at_2000["fakes/_type"] == "image-file"
    assert at_2000["G/weights/weight/_type"] == "histogram"
    assert session["summary"]["eval/features"] == "toy"  # a metric's provenance
    images = sorted(p.name for p in (session["folder"] / "files" / "media" / "images").iterdir())
    assert [name.split("_")[0] for name in images] == ["fakes", "reals"]


def test_a_resumed_run_continues_the_wandb_run_without_logging_a_step_twice(tmp_path,
                                                                              wandb_offline):
    run_dir = tmp_path / "run"
    log_a_run(run_dir, ["wandb"], rows=TRAIN[:2])  # stopped after 2 kimg
    log_a_run(run_dir, ["wandb"], resume_kimg=1.0)  # from the 1 kimg checkpoint
    first, resumed = read_wandb(run_dir)
    assert resumed["id"] == first["id"] == (run_dir / "wandb" / "run_id").read_text()
    steps = [row["_step"] for row in resumed["history"] if "loss/D" in row]
    assert steps == [3000]  # 2000 was logged before the stop


def test_wandb_online_without_an_account_is_one_line_saying_what_to_do(tmp_path,
                                                                       wandb_offline,
                                                                       monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc holding a key
    with pytest.raises(UserError, match="W&B could not start a run: No API key") as error:
        RunLog(tmp_path, loggers={"wandb": WandbConfig(mode="online")})
    assert "WANDB_MODE=offline" in error.value.hint


# ---------------------------------------------------------------- MLflow
@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory) -> tuple[Path, Any, str]:
    """A run logged to MLflow's default local store, stopped at 2 kimg and resumed from 1."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path_factory.mktemp("mlflow") / "run"
    log_a_run(run_dir, ["mlflow"], rows=TRAIN[:2])
    log_a_run(run_dir, ["mlflow"], resume_kimg=1.0)
    client = MlflowClient(f"sqlite:///{run_dir / 'mlflow' / 'mlflow.db'}")
    return run_dir, client, (run_dir / "mlflow" / "run_id").read_text()


def test_mlflow_keeps_the_config_as_params_and_provenance_as_tags(mlflow_run):
    _, client, run_id = mlflow_run
    run = client.get_run(run_id)
    assert run.data.params == {"trainer.kimg": "4", "trainer.seed": "0", "loss.name": "hinge"}
    assert run.data.tags["provenance.device"] == "cpu"
    assert run.data.tags["provenance.resumed_at_kimg"] == "1.0"  # the newest start
    assert run.data.tags["eval.features"] == "toy"
    assert run.info.status == "FINISHED"


def test_mlflow_holds_each_step_once_across_a_resume(mlflow_run):
    _, client, run_id = mlflow_run
    history = client.get_metric_history(run_id, "loss/D")
    assert sorted((m.step, m.value) for m in history) == [(1000, 2.0), (2000, 3.0), (3000, 4.0)]
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "fid")] == [(2000, 42.5)]


def test_mlflow_keeps_the_sample_grids(mlflow_run):
    run_dir, client, run_id = mlflow_run
    names = [f.path for f in client.list_artifacts(run_id, "images")]
    assert any("fakes" in name and name.endswith(".png") for name in names)
    assert any("reals" in name for name in names)
    assert (run_dir / "mlflow" / "artifacts").is_dir()  # beside the store, in the run


def test_mlflow_logs_to_the_tracking_uri_when_given(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's own artifact root for such a store: ./mlruns
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    log_a_run(tmp_path / "run", {"mlflow": MlflowConfig(tracking_uri=uri, experiment="sweep")},
              rows=TRAIN[:1])
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("sweep").experiment_id])
    assert run.data.metrics["loss/D"] == 2.0
    assert not (tmp_path / "run" / "mlflow" / "mlflow.db").exists()
    assert (tmp_path / "mlruns").is_dir()


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
@needs_fmnist
def test_gan_train_logs_to_several_loggers_at_once(tmp_path, wandb_offline):
    pytest.importorskip("mlflow")
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gan-train"), *TINY_FMNIST,
         "logger=[csv,wandb,mlflow]", f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_rows(run_dir / "metrics.jsonl")
    assert len(read_csv(run_dir / "csv" / "train.csv")) == len(rows)
    [session] = read_wandb(run_dir)
    assert session["config"]["trainer"]["kimg"] == validated(compose_config(TINY_FMNIST)
                                                             ).trainer.kimg
    assert (run_dir / "mlflow" / "run_id").is_file()
    assert not (run_dir / "tensorboard").exists()
