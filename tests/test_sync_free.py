"""A training iteration never makes the host wait for the device.

On a GPU, reading a device value on the host (``.item()``, ``bool(tensor)``, ``float(tensor)``)
waits for every kernel queued so far, which serializes the CUDA streams the scheduler lays out.
Those reads all go through two aten ops, so a dispatch mode that refuses them proves on the CPU
that ``Trainer.iteration()`` makes none; the loop reads device values only at log rows,
snapshots and evaluations. The optimizers' step counters are the one exception: PyTorch keeps
them on the host on every device (``capturable=False``), so reading them waits for nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from test_scheduler import poison_d_loss
from torch.utils._python_dispatch import TorchDispatchMode

from gan_runner.storage.runlog import read_rows

from conftest import TINY_FMNIST, TINY_TOY, needs_fmnist

HOST_READS = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default)
TINY_DCGAN = TINY_FMNIST  # its model.channels is DCGAN's
TINY_STYLEGAN2_ADA = [*(o for o in TINY_FMNIST if not o.startswith("model.")),
                      "experiment=stylegan2", "model.channel_max=16", "model.z_dim=32",
                      "model.w_dim=32", "model.mapping_layers=2", "dataset.resolution=16",
                      "trainer.batch_size=8",
                      "regularizer.r1.every=2", "regularizer.path_length.every=2",
                      "augment=ada", "augment.interval=1", "augment.p_init=0.2"]


class HostReadError(AssertionError):
    pass


class RefuseHostReads(TorchDispatchMode):
    """Raises on every host read of a tensor value, except of the ``allowed`` tensors."""

    def __init__(self, allowed: list[torch.Tensor]) -> None:
        super().__init__()
        self.allowed = {id(t) for t in allowed}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS and id(args[0]) not in self.allowed:
            raise HostReadError(f"{func} inside Trainer.iteration()")
        return func(*args, **(kwargs or {}))


@contextmanager
def no_host_reads(trainer) -> Iterator[None]:
    steps = [state["step"] for opt in (trainer.state.opt_G, trainer.state.opt_D)
             for state in opt.state.values() if "step" in state]
    with RefuseHostReads(steps):
        yield


def warmed_up(make_trainer, overrides: list[str]):
    """A trainer after one iteration (the optimizers create their state in their first step)."""
    trainer = make_trainer(overrides)
    trainer.iteration()
    return trainer


def test_the_guard_catches_item_and_bool():
    value = torch.ones(())
    with RefuseHostReads([]), pytest.raises(HostReadError):
        value.item()
    with RefuseHostReads([]), pytest.raises(HostReadError):
        bool(value > 0)


@needs_fmnist
def test_dcgan_iterations_never_read_a_device_value(make_trainer):
    trainer = warmed_up(make_trainer, [*TINY_DCGAN, "regularizer=r1"])
    with no_host_reads(trainer):
        for _ in range(3):
            trainer.iteration()
    assert trainer.state.g_steps == 4


@needs_fmnist
def test_stylegan2_with_r1_path_length_and_ada_iterations_never_read_a_device_value(
        make_trainer):
    trainer = warmed_up(make_trainer, TINY_STYLEGAN2_ADA)
    with no_host_reads(trainer):
        for _ in range(4):  # every lazy phase runs and ADA adjusts p
            trainer.iteration()
    controller = trainer.state.augment.controller
    assert controller.p_value != 0.2  # p moved, by an r_t that reached the host unasked


@needs_fmnist
def test_non_finite_updates_are_counted_without_a_host_read_and_settled_at_the_log_row(
        make_trainer):
    trainer = warmed_up(make_trainer, TINY_DCGAN)
    poison_d_loss(trainer, calls=2)
    with no_host_reads(trainer):
        for _ in range(3):
            trainer.iteration()
    assert trainer.state.skipped == 0  # not known on the host yet
    trainer.settle_nonfinite()
    streaks = {net: counts.streak for net, counts in trainer.nonfinite.read().items()}
    assert trainer.state.skipped == 2 and streaks == {"G": 0, "D": 0}


def test_a_run_settles_the_non_finite_updates_at_its_log_rows(make_trainer):
    trainer = make_trainer(TINY_TOY)  # a log row every 2 iterations
    poison_d_loss(trainer, calls=3)
    trainer.run()
    rows = [row for row in read_rows(trainer.run_dir / "metrics.jsonl") if row["kind"] == "train"]
    assert [row.get("skipped_updates") for row in rows] == [2, 3]
    assert "loss/D" not in rows[0] and "loss/D" in rows[1]  # NaN statistics count nowhere
