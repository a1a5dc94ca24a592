"""``gan-report``: one row per run with the options that tell runs apart, best and final
metrics, the same table as Markdown and CSV, and PNG charts; unfinished runs still count."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image
from rich.table import Table

from gan_runner.core.errors import UserError
from gan_runner.presentation.plots import colour
from gan_runner.presentation.report.charts import metric_charts, train_charts
from gan_runner.presentation.report.make import make_report
from gan_runner.presentation.report.runs import load_runs
from gan_runner.presentation.report.table import build_table
from gan_runner.presentation.terminal import console_for

from conftest import TINY_TOY

BIN = Path(sys.executable).parent
TAIL = ["kimg", "wall", "sec/kimg"]


def fake_run(path: Path, overrides: dict[str, str], *, evals: list[dict[str, float]],
             finished: bool = True, grid_colour: tuple[int, int, int] = (0, 0, 0),
             train_extra: dict[str, float] | None = None, **summary: Any) -> Path:
    """A run directory as gan-train leaves it: evaluations every 2 kimg, train rows every 1."""
    choices = {"experiment": "toy_ring8", "loss": "ns", "regularizer": "none", **{
        k: v for k, v in overrides.items() if "." not in k}}
    hydra = path / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text("trainer:\n  kimg: 4\n")
    (hydra / "overrides.yaml").write_text("".join(f"- {k}={v}\n" for k, v in overrides.items()))
    (hydra / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n" + "".join(
            f"      {k}: {v}\n" for k, v in {**choices, "hydra/launcher": "basic"}.items()))
    rows: list[dict[str, Any]] = []
    for i, metrics in enumerate(evals):
        kimg = 2.0 * (i + 1)
        rows += [{"kind": "train", "kimg": kimg - 1, "loss/D": 1.0 + i, "loss/G": 2.0 - i,
                  "sec_per_kimg": 0.5, **(train_extra or {})},
                 {"kind": "train", "kimg": kimg, "loss/D": 1.5 + i, "loss/G": 1.5 - i,
                  "sec_per_kimg": 0.5, **(train_extra or {})},
                 {"kind": "eval", "kimg": kimg, **metrics, "features": "toy", "num_fakes": 100}]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = path / "samples"
    samples.mkdir()
    Image.new("RGB", (40, 40), (255, 255, 255)).save(samples / "fakes_000000kimg.png")
    Image.new("RGB", (40, 40), grid_colour).save(samples / f"fakes_{2 * len(evals):06d}kimg.png")
    if finished:
        (path / "summary.json").write_text(json.dumps({
            "kimg": 2.0 * len(evals), "wall_seconds": 67.5, "sec_per_kimg": 0.52,
            "choices": choices, "stopped_by": None, **summary}))
    return path


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Jobs 0, 2 and 10 of a sweep over loss and regularizer on the same experiment."""
    root = tmp_path / "sweep"
    common = {"experiment": "toy_ring8", "trainer.kimg": "4"}
    fake_run(root / "0", {**common, "loss": "ns", "regularizer": "none"}, grid_colour=(255, 0, 0),
             evals=[{"fid": 50.0, "modes": 3.0}, {"fid": 30.0, "modes": 8.0}])
    fake_run(root / "2", {**common, "loss": "hinge", "regularizer": "none"},
             grid_colour=(0, 255, 0), evals=[{"fid": 20.0, "modes": 7.0},
                                              {"fid": 25.0, "modes": 6.0}])
    fake_run(root / "10", {**common, "loss": "hinge", "regularizer": "r1"},
             grid_colour=(0, 0, 255), evals=[{"fid": 40.0, "modes": 5.0}])
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def table_of(root: Path) -> tuple[list[str], list[dict[str, Any]]]:
    table = build_table(load_runs(root))
    return table.columns, [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def test_a_sweep_has_one_row_per_job_and_the_swept_options_as_columns(sweep):
    columns, rows = table_of(sweep)
    assert columns == ["run", "status", "loss", "regularizer", "FID best", "FID final",
                       "modes best", "modes final", *TAIL]
    assert [r["run"] for r in rows] == ["0", "2", "10"]
    assert [(r["loss"], r["regularizer"]) for r in rows] == [
        ("ns", "none"), ("hinge", "none"), ("hinge", "r1")]


def test_best_follows_the_metric_direction_and_final_is_the_last_evaluation(sweep):
    with open(sweep / "0" / "metrics.jsonl", "a") as f:  # the large metrics.final_num_fakes one
        f.write(json.dumps({"kind": "final", "kimg": 4.0, "fid": 33.0, "modes": 7.0}) + "\n")
    _, rows = table_of(sweep)
    first, second = rows[0], rows[1]
    assert (first["FID best"], first["FID final"]) == (30.0, 33.0)
    assert (first["modes best"], first["modes final"]) == (8.0, 7.0)  # more modes is better
    assert (second["FID best"], second["FID final"]) == (20.0, 25.0)
    assert (first["kimg"], first["wall"], first["sec/kimg"]) == (4.0, 67.5, 0.52)


def test_the_same_value_spelled_differently_is_not_a_swept_option(tmp_path):
    """A sweep writes what it expanded the Python way (False, 0.0001)."""
    fake_run(tmp_path / "a", {"loss": "ns", "trainer.progress": "false",
                              "optimizer.g_lr": "1e-4"}, evals=[{"fid": 1.0}])
    fake_run(tmp_path / "b", {"loss": "hinge", "trainer.progress": "False",
                              "optimizer.g_lr": "0.0001"}, evals=[{"fid": 2.0}])
    columns, _ = table_of(tmp_path)
    assert columns[2:4] == ["loss", "FID best"]


def test_only_the_metrics_some_run_has_get_columns(tmp_path):
    fake_run(tmp_path / "a", {"loss": "ns"}, evals=[{"kid": 0.01, "is": 3.0}])
    fake_run(tmp_path / "b", {"loss": "hinge"}, evals=[{"kid": 0.02, "precision": 0.5}])
    columns, _ = table_of(tmp_path)
    assert columns == ["run", "status", "loss", "KID best", "KID final", "IS best", "IS final",
                       "precision best", "precision final", *TAIL]


def test_a_single_run_shows_what_it_overrode(tmp_path):
    run = fake_run(tmp_path / "run", {"experiment": "toy_ring8", "trainer.kimg": "4"},
                   evals=[{"fid": 9.0}])
    columns, rows = table_of(run)
    assert columns[:4] == ["run", "status", "experiment", "trainer.kimg"]
    assert rows == [{**rows[0], "run": "run", "experiment": "toy_ring8", "trainer.kimg": "4"}]


def test_unfinished_runs_are_reported_from_their_rows_and_marked(sweep):
    killed = fake_run(sweep / "3", {"loss": "rsgan"}, evals=[{"fid": 60.0, "modes": 2.0}],
                      finished=False)
    with open(killed / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "kimg": 2.5, "loss/D"')  # cut off mid-row
    fake_run(sweep / "4", {"loss": "lsgan"}, evals=[{"fid": 70.0}], stopped_by="SIGTERM")
    _, rows = table_of(sweep)
    by_run = {r["run"]: r for r in rows}
    assert by_run["3"]["status"] == "incomplete"
    assert (by_run["3"]["FID best"], by_run["3"]["kimg"], by_run["3"]["wall"]) == (60.0, 2.0, None)
    assert by_run["3"]["loss"] == "rsgan"
    assert by_run["4"]["status"] == "stopped (SIGTERM)"
    assert {r["status"] for r in rows if r["run"] in ("0", "2", "10")} == {"done"}


def test_an_unfinished_run_takes_its_choices_from_hydras_record(tmp_path):
    fake_run(tmp_path / "a", {"loss": "ns"}, evals=[{"fid": 1.0}])
    b = fake_run(tmp_path / "b", {"loss": "wgan"}, evals=[{"fid": 2.0}], finished=False)
    (b / ".hydra" / "overrides.yaml").write_text("[]\n")  # e.g. chosen in a preset
    _, rows = table_of(tmp_path)
    assert [r["loss"] for r in rows] == ["ns", "wgan"]


def test_markdown_and_csv_hold_the_same_table(sweep):
    report = make_report(sweep)
    out = sweep / "report"
    assert report.files[:2] == [out / "report.md", out / "report.csv"]
    md = (out / "report.md").read_text().splitlines()
    header = md.index("| run | status | loss | regularizer | FID best | FID final | modes best "
                      "| modes final | kimg | wall | sec/kimg |")
    assert md[header + 1].startswith("| --- | --- | --- | --- | ---: |")
    assert md[header + 2] == "| 0 | done | ns | none | 30 | 30 | 8 | 8 | 4 | 1m 08s | 0.52 |"
    assert "![metrics](metrics.png)" in md
    with open(out / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["0", "2", "10"]
    assert rows[1]["FID best"] == "20.0" and rows[1]["wall"] == "67.5"


def test_the_charts_and_the_sample_sheet_are_written(sweep):
    report = make_report(sweep, sweep / "out")
    names = {p.name for p in report.files}
    assert {"metrics.png", "losses.png", "samples.png"} <= names
    assert "augment.png" not in names  # nothing logged augment/p
    metrics = Image.open(sweep / "out" / "metrics.png")
    assert metrics.size == (2 * 640, 320 + 3 * 20)  # FID and modes side by side, 3 runs
    sheet = np.asarray(Image.open(sweep / "out" / "samples.png").convert("RGB"))
    for rgb in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):  # each run's last grid, not its first
        assert (sheet == rgb).all(axis=-1).sum() > 30 * 30


def test_fid_is_on_a_log_axis_and_a_run_keeps_its_colour_in_every_chart(sweep):
    fake_run(sweep / "11", {"loss": "lsgan"}, evals=[{"fid": 10.0}])  # logged no modes
    runs = load_runs(sweep)
    labels = [run.name for run in runs]
    figures = [*metric_charts(runs, labels, ["fid", "modes"]),
               *train_charts(runs, labels, ["loss/D", "loss/G"])]
    axes = [figure.axes[0] for figure in figures]
    assert [a.get_title() for a in axes] == ["FID", "modes", "loss/D", "loss/G"]
    assert [a.get_yscale() for a in axes] == ["log", "linear", "linear", "linear"]
    for figure in figures:
        (legend,) = figure.legends
        assert [text.get_text() for text in legend.get_texts()] == ["0", "2", "10", "11"]
        assert [to_rgb(line.get_color()) for line in figure.axes[0].get_lines()] == [
            colour(i) for i in range(4)]


def test_augmentation_curves_are_drawn_when_logged(tmp_path):
    fake_run(tmp_path / "ada", {"augment": "ada"}, evals=[{"fid": 5.0}],
             train_extra={"augment/p": 0.1, "augment/rt": 0.7})
    report = make_report(tmp_path)
    assert tmp_path / "report" / "augment.png" in report.files
    assert Image.open(tmp_path / "report" / "augment.png").size == (2 * 640, 320 + 20)


def test_the_report_folder_is_not_taken_for_a_run(sweep):
    make_report(sweep)
    assert len(make_report(sweep).runs) == 3


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None])
def test_a_folder_without_runs_is_a_user_error(tmp_path, make):
    make(tmp_path / "empty")
    with pytest.raises(UserError):
        make_report(tmp_path / "empty")


def run_report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "gan-report"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_the_command_prints_the_table_and_where_it_wrote(sweep):
    result = run_report(str(sweep), f"out={sweep / 'r'}", cwd=sweep)
    assert result.returncode == 0, result.stderr
    assert "regularizer" in result.stdout and "hinge" in result.stdout
    assert f"to {sweep / 'r'}" in result.stdout.replace("\n", "")
    assert (sweep / "r" / "report.md").is_file()


def test_a_table_printed_to_a_pipe_keeps_each_row_on_one_line(capsys):
    table = Table()
    table.add_column("run")
    table.add_row("x" * 150)
    console_for(table).print(table)
    assert any("x" * 150 in line for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("args,message", [
    (["empty"], "error: no runs under empty"),
    (["nowhere"], "error: nowhere is not a directory"),
    ([], "error: gan-report needs exactly one PATH"),
    ([".", "outt=x"], "error: unknown argument 'outt=x'"),
])
def test_mistakes_get_one_line_and_exit_status_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    result = run_report(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message) and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_real_sweep_is_reported(tmp_path):
    sweep_args = [a for a in TINY_TOY if not a.startswith("metrics=")]
    train = subprocess.run([str(BIN / "gan-train"), "-m", *sweep_args, "loss=ns,hinge",
                            "metrics=toy", "metrics.every_kimg=0.064", "metrics.num_fakes=256",
                            f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr
    result = run_report(str(tmp_path / "sweep"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "sweep" / "report" / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], r["status"], r["loss"]) for r in rows] == [
        ("0", "done", "ns"), ("1", "done", "hinge")]
    assert all(float(r["FID best"]) > 0 and r["modes final"] for r in rows)
    for name in ("metrics.png", "losses.png", "samples.png"):
        assert Image.open(tmp_path / "sweep" / "report" / name).width > 0
