"""Data-parallel training: any number of ranks trains what one process with the same global
batch trains, only rank 0 writes, and checkpoints do not care how many ranks wrote them."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_runner.cli.train import torchrun_overrides
from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.core.errors import UserError
from gan_runner.storage.checkpoint import checkpoint_path, load_checkpoint
from gan_runner.storage.runlog import read_rows
from gan_runner.train import distributed
from gan_runner.train.distributed import World, in_buckets, own_random_state, rank_seed
from gan_runner.train.loop import Trainer

from conftest import TINY_TOY

# lazy R1 (double backward in its own phase), spectral norm (buffers) and the toy metrics (rank
# 0 evaluates, the other rank waits for its results): 4 iterations of a global batch of 32
RUN = [*TINY_TOY, "regularizer=r1", "regularizer.r1.every=2", "model.spectral_norm=true",
       "metrics=toy", "metrics.names=[toy]", "metrics.num_reals=256", "metrics.num_fakes=256",
       "metrics.every_kimg=0.064"]
LONGER = "trainer.kimg=0.192"  # two more iterations
ATOL = 1e-6  # measured 6e-8 (spectral-norm vectors): the ranks sum in another order


def tensors(state: dict) -> dict[str, torch.Tensor]:
    return {f"{net}.{k}": v for net in ("G", "D", "G_ema") for k, v in state[net].items()}


def assert_close(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, atol=ATOL, rtol=0, msg=key)


# ---------------------------------------------------------------------- one process, fast
def test_each_rank_takes_its_contiguous_share_of_the_global_batch():
    batch = torch.arange(8)
    assert torch.equal(World().local_slice(batch), batch)
    shares = [World(rank, 4).local_slice(batch) for rank in range(4)]
    assert [s.tolist() for s in shares] == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(UserError, match=r"batch_size=30 cannot be split evenly over 4 .*"
                                        r"multiple of 4"):
        World(1, 4).local_batch(30)


def test_the_trainer_checks_the_batch_against_the_world_before_training(make_trainer,
                                                                        monkeypatch):
    monkeypatch.setattr(distributed, "current", lambda: World(0, 3))
    with pytest.raises(UserError, match="batch_size=32 cannot be split evenly over 3"):
        make_trainer(TINY_TOY)


def test_buckets_hand_one_flat_tensor_per_dtype_to_the_collective_and_write_it_back():
    image = torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last)
    items = [torch.ones(3), image, torch.arange(4), torch.full((2, 2), 2.0, dtype=torch.float64),
             torch.tensor(5.0)]
    before = [t.clone() for t in items]
    calls = []

    def double(flat: torch.Tensor) -> None:
        calls.append((flat.dtype, flat.numel()))
        flat.mul_(2)

    in_buckets(items, double)
    assert calls == [(torch.float32, 3 + 96 + 1), (torch.int64, 4), (torch.float64, 4)]
    for after, was in zip(items, before, strict=True):
        assert torch.equal(after, was * 2)
    assert image.is_contiguous(memory_format=torch.channels_last)


def test_a_world_of_one_needs_no_process_group():
    world, loss = World(), torch.tensor(1.5)
    net = torch.nn.Linear(2, 1)
    net(torch.ones(1, 2)).sum().backward()
    grad = net.weight.grad.clone()
    assert world.average_gradients(net, loss) is loss
    assert torch.equal(net.weight.grad, grad)
    assert torch.equal(world.gather(grad), grad)
    assert world.agreed_signal(signal.SIGTERM) == signal.SIGTERM
    assert world.share("dir") == "dir" and world.collect("state") == ["state"]
    world.broadcast_buffers(torch.nn.BatchNorm1d(2))
    assert distributed.current() == World()


def test_rank_0_keeps_the_run_random_state_and_the_others_get_their_own():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    own_random_state(World(0, 2), seed=0)
    assert torch.equal(torch.rand(3), expected)

    own_random_state(World(1, 2), seed=0, nimg=64)
    rank_1 = torch.rand(3), random.random()
    own_random_state(World(1, 2), seed=0, nimg=64)
    assert torch.equal(torch.rand(3), rank_1[0]) and random.random() == rank_1[1]
    assert len({rank_seed(0, rank, nimg) for rank in (1, 2) for nimg in (0, 64)}) == 4


def test_a_checkpoint_of_as_many_ranks_gives_back_each_rank_its_own_stream():
    from gan_runner.core.rng import capture_rng

    torch.manual_seed(1)
    saved = [None, capture_rng()]
    expected = torch.rand(3)
    own_random_state(World(1, 2), seed=0, saved=saved)
    assert torch.equal(torch.rand(3), expected)
    own_random_state(World(1, 3), seed=0, saved=saved)  # saved by another number of ranks
    assert not torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("env", "expected"), [
    ({}, []),
    ({"WORLD_SIZE": "2", "RANK": "0"}, []),
    ({"WORLD_SIZE": "2", "RANK": "1"},
     ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled"]),
])
def test_only_rank_0_keeps_hydras_run_directory_and_log(monkeypatch, env, expected):
    for key in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert torchrun_overrides(["loss=hinge"]) == expected


def test_a_sweep_under_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="-m cannot run under torchrun"):
        torchrun_overrides(["-m", "loss=ns,hinge"])


# ---------------------------------------------------------------------- two processes (gloo)
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def run_args(tmp_path_factory) -> list[str]:
    return [*RUN, f"metrics.cache_dir={tmp_path_factory.mktemp('cache')}"]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, run_args) -> Path:
    """A 2-rank ``gan-train`` run, its processes started with the variables torchrun sets
    (torchrun itself would cost one more interpreter); returns their working directory, in
    which the run directory is ``run/``."""
    cwd = tmp_path_factory.mktemp("ranks")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    command = [sys.executable, "-m", "gan_runner.cli.train", *run_args, "hydra.run.dir=run"]
    ranks = [subprocess.Popen(command, cwd=cwd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(2)]
    outputs = [rank.communicate(timeout=300)[0] for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], "\n".join(outputs)[-3000:]
    return cwd


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, run_args) -> Path:
    """The same run in one process, two iterations longer; returns its run directory."""
    run_dir = tmp_path_factory.mktemp("one") / "run"
    cfg = compose_config([*run_args, LONGER])
    Trainer(validated(cfg), run_dir, as_dict(cfg)).run()
    return run_dir


def checkpoint(run_dir: Path, nimg: int) -> dict:
    return load_checkpoint(checkpoint_path(run_dir / "checkpoints", nimg))


@pytest.mark.slow
def test_two_ranks_train_the_weights_of_one_process_with_the_same_global_batch(
        two_ranks, one_process):
    ours, theirs = checkpoint(two_ranks / "run", 128), checkpoint(one_process, 128)
    assert ours["state"]["counters"] == theirs["state"]["counters"]
    assert_close(tensors(ours["state"]), tensors(theirs["state"]))
    for evaluation, expected in zip(ours["state"]["history"], theirs["state"]["history"],
                                    strict=True):  # rank 0's results, on every rank
        assert evaluation == pytest.approx(expected)
    rows = read_rows(two_ranks / "run" / "metrics.jsonl")
    for row, expected in zip(rows, read_rows(one_process / "metrics.jsonl"), strict=False):
        for key in ("loss/D", "loss/G", "reg/r1", "grad_norm/D", "D/real_logits"):
            if key in expected:  # the means over the global batch
                assert row[key] == pytest.approx(expected[key], abs=ATOL), key


@pytest.mark.slow
def test_only_rank_0_writes_files(two_ranks):
    written = sorted(str(p.relative_to(two_ranks)) for p in two_ranks.rglob("*") if p.is_file())
    assert all(name.startswith("run/") for name in written), written  # rank 1 ran in "."
    rows = read_rows(two_ranks / "run" / "metrics.jsonl")
    assert [(r["kind"], r["kimg"]) for r in rows] == [("train", 0.064), ("eval", 0.064),
                                                      ("train", 0.128), ("eval", 0.128)]
    assert (two_ranks / "run" / "train.log").read_text().count("training mlp on") == 1
    assert sorted(p.name for p in (two_ranks / "run" / "checkpoints").iterdir()) == [
        "ckpt-000000064.pt", "ckpt-000000128.pt"]


@pytest.mark.slow
def test_a_two_rank_checkpoint_resumes_in_one_process(two_ranks, one_process, run_args,
                                                      make_trainer, tmp_path):
    path = checkpoint_path(two_ranks / "run" / "checkpoints", 128)
    assert len(load_checkpoint(path)["rank_rng"]) == 2
    resumed = make_trainer([*run_args, LONGER, f"trainer.resume={path}"])
    assert resumed.run()["resumed_from"] == str(path)
    expected = checkpoint(one_process, 192)["state"]
    assert resumed.state.nimg == expected["counters"]["nimg"] == 192
    assert_close(tensors(resumed.state.state_dict()), tensors(expected))
