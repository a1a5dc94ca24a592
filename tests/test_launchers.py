"""Sweeps: our launcher and sweeper presets, the objective a sweep minimizes, and resuming.

The presets are composed in-process (fast); ``-m slow`` runs real sweeps through each launcher
with ``gan-train`` as a user would, including a job that submitit requeues and that resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.distributions import CategoricalDistribution, LogUniformDistribution

from gan_runner.cli.train import apply_thread_limit, exit_after_stop, require_objective
from gan_runner.config.store import register_configs
from gan_runner.core.errors import UserError
from gan_runner.train.signals import REQUEUE, StopRequest

from conftest import TINY_TOY

BIN = Path(sys.executable).parent
CONF = Path(__file__).resolve().parents[1] / "conf"
# evaluations small enough for a test: the toy metrics on 500 fakes at the end of the run
TINY_TOY_METRICS = ["metrics=toy", "metrics.names=[toy]", "metrics.num_fakes=500"]


def compose_with_hydra(*overrides: str) -> DictConfig:
    """The config with its ``hydra`` node, as a launcher or sweeper receives it."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module("gan_runner.conf", version_base=None):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


# ---------------------------------------------------------------- presets (fast)
def test_local_runs_a_process_per_core_with_one_torch_thread_each():
    hydra_cfg = compose_with_hydra("hydra/launcher=local").hydra
    assert hydra_cfg.launcher._target_.endswith("JoblibLauncher")
    assert hydra_cfg.launcher.n_jobs == -1  # joblib: one worker per CPU core
    assert hydra_cfg.job.env_set.OMP_NUM_THREADS == "1"


def test_slurm_asks_for_the_requeue_signal_and_threads_follow_the_cpus():
    hydra_cfg = compose_with_hydra("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                   "hydra.launcher.cpus_per_task=6").hydra
    launcher = instantiate(hydra_cfg.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    params = launcher.params
    assert params["partition"] == "gpu" and params["gpus_per_node"] == 1
    assert params["signal_delay_s"] >= 60  # time to save a checkpoint before SIGKILL
    assert params["max_num_timeout"] > 0  # a job that reaches timeout_min is requeued
    assert params["additional_parameters"] == {"requeue": True}
    assert OmegaConf.to_container(hydra_cfg.job.env_set, resolve=True) == {
        "OMP_NUM_THREADS": "6"}


def test_slurm_local_is_submitits_local_executor_with_one_thread_per_job():
    hydra_cfg = compose_with_hydra("hydra/launcher=slurm_local").hydra
    assert type(instantiate(hydra_cfg.launcher)).__name__ == "LocalLauncher"
    assert hydra_cfg.job.env_set.OMP_NUM_THREADS == "1"


def test_optuna_fid_minimizes_over_learning_rates_and_existing_losses():
    sweeper = compose_with_hydra("hydra/sweeper=optuna_fid").hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    distributions, fixed = create_params_from_overrides(
        [f"{key}={value}" for key, value in sweeper.params.items()])
    assert not fixed
    for lr in ("optimizer.g_lr", "optimizer.d_lr"):
        rate = distributions[lr]  # a log scale around Adam's usual 2e-4
        assert isinstance(rate, LogUniformDistribution) and rate.low < 2e-4 < rate.high
    loss = distributions["loss"]
    assert isinstance(loss, CategoricalDistribution) and len(loss.choices) > 1
    assert all((CONF / "loss" / f"{name}.yaml").exists() for name in loss.choices)


def test_the_jobs_thread_count_is_applied_although_torch_is_already_loaded(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(before + 1))  # as hydra.job.env_set does
    try:
        apply_thread_limit()
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- the objective (fast)
@pytest.fixture
def set_hydra_config():
    """``set_hydra_config(*overrides, mode=...)`` -> the task's config, HydraConfig set as in a
    job (and cleared afterwards)."""

    def set_config(*overrides: str, mode: RunMode) -> DictConfig:
        cfg = compose_with_hydra(*overrides)
        with open_dict(cfg):
            cfg.hydra.mode = mode
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield set_config
    HydraConfig.instance().cfg = None


def test_an_optimizing_sweep_refuses_runs_without_metrics(set_hydra_config):
    cfg = set_hydra_config("hydra/sweeper=optuna_fid", "metrics=none", mode=RunMode.MULTIRUN)
    with pytest.raises(UserError, match=r"metrics\.best"):
        require_objective(cfg)


@pytest.mark.parametrize(("overrides", "mode"), [
    (["hydra/sweeper=optuna_fid", "experiment=toy_ring8"], RunMode.MULTIRUN),  # best: kl
    (["metrics=none"], RunMode.MULTIRUN),  # a grid sweep needs no objective
    (["hydra/sweeper=optuna_fid", "metrics=none"], RunMode.RUN),  # no sweep at all
])
def test_runs_that_need_no_objective_or_have_one_pass(set_hydra_config, overrides, mode):
    require_objective(set_hydra_config(*overrides, mode=mode))


# ---------------------------------------------------------------- the requeue signal (fast)
@pytest.fixture
def submitit_like_handler():
    """A Python handler for REQUEUE, as submitit installs in its jobs; it records its calls."""
    calls: list[int] = []
    previous = signal.signal(REQUEUE, lambda signum, frame: calls.append(signum))
    yield calls
    signal.signal(REQUEUE, previous)


def test_the_requeue_signal_stops_the_run_even_next_to_a_sigterm(submitit_like_handler):
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # a preemption: SIGTERM, then the user signal
        os.kill(os.getpid(), REQUEUE)
        os.kill(os.getpid(), signal.SIGTERM)  # no KeyboardInterrupt: the checkpoint comes first
    assert stop.signal == REQUEUE and stop.exit_status == 128 + REQUEUE
    assert submitit_like_handler == []  # not yet: after the checkpoint


def test_after_the_checkpoint_the_requeue_signal_goes_to_the_handler_it_replaced(
        submitit_like_handler):
    with pytest.raises(SystemExit) as stopped:
        exit_after_stop({"stopped_by": REQUEUE.name, "exit_status": 128 + REQUEUE})
    assert submitit_like_handler == [REQUEUE]
    assert stopped.value.code == 128 + REQUEUE


def test_a_sigterm_stop_exits_143_without_a_requeue(submitit_like_handler):
    with pytest.raises(SystemExit) as stopped:
        exit_after_stop({"stopped_by": "SIGTERM", "exit_status": 143})
    assert submitit_like_handler == [] and stopped.value.code == 143


# ---------------------------------------------------------------- real sweeps (slow)
def gan_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([str(BIN / "gan-train"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def summaries(sweep: Path, jobs: int) -> list[dict]:
    return [json.loads((sweep / str(i) / "summary.json").read_text()) for i in range(jobs)]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["local", "slurm_local"])
def test_a_two_job_sweep_runs_through_the_launcher(tmp_path, launcher):
    result = gan_train("-m", "loss=ns,hinge", *TINY_TOY, f"hydra/launcher={launcher}",
                       "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    done = summaries(tmp_path / "sweep", 2)
    assert [s["choices"]["loss"] for s in done] == ["ns", "hinge"]
    assert all(s["kimg"] == pytest.approx(0.128) for s in done)


@pytest.mark.slow
def test_an_optuna_sweep_minimizes_the_returned_objective(tmp_path):
    result = gan_train("-m", "hydra/sweeper=optuna_fid", "hydra.sweeper.n_trials=2", *TINY_TOY,
                       *TINY_TOY_METRICS, "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    objectives = [s["objective"] for s in summaries(tmp_path / "sweep", 2)]
    assert None not in objectives
    best = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert best.best_value == pytest.approx(min(objectives))


@pytest.mark.slow
def test_rerunning_a_sweep_with_more_kimg_resumes_every_job(tmp_path):
    sweep = ["-m", "loss=ns,hinge", *TINY_TOY, "hydra.sweep.dir=sweep"]
    assert gan_train(*sweep, cwd=tmp_path).returncode == 0
    result = gan_train(*sweep, "trainer.kimg=0.256", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for i, summary in enumerate(summaries(tmp_path / "sweep", 2)):
        assert "resumed from" in (tmp_path / "sweep" / str(i) / "train.log").read_text()
        assert summary["resumed_from"] and summary["kimg"] == pytest.approx(0.256)


def wait_for(condition: Callable[[], object], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def submitit_job_pid(folder: Path) -> int | None:
    """The process that runs a submitit job pickled under ``folder`` (Linux /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in cmdline and str(folder).encode() in b" ".join(cmdline):
            return int(proc.name)
    return None


@pytest.mark.slow
def test_a_job_warned_by_submitit_saves_requeues_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    args = [str(BIN / "gan-train"), "-m", "loss=ns", *TINY_TOY, "trainer.kimg=6",
            "trainer.snapshot_every_kimg=100", "hydra/launcher=slurm_local",
            f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        metrics = sweep / "0" / "metrics.jsonl"
        wait_for(lambda: metrics.exists() and metrics.read_text().strip())
        job = submitit_job_pid(sweep / ".submitit")
        assert job is not None
        os.kill(job, REQUEUE)  # as SLURM does signal_delay_s before timeout_min
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    log = (sweep / "0" / "train.log").read_text()
    assert f"{REQUEUE.name} at" in log and "resumed from" in log
    summary = summaries(sweep, 1)[0]
    assert summary["resumed_from"] and summary["kimg"] == pytest.approx(6, abs=0.032)
