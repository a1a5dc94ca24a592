"""The CUDA path: streams, the sync-free step, fp16 scalers across a resume, compile,
channels_last, the device-resident feed and NCCL.

These run on a GPU (``scripts/device_check.sh``) and are skipped without one. The device check's
``--dry-run`` runs them on the CPU (``GAN_RUNNER_TEST_DEVICE=cpu``), so their own code is known
to work before a GPU comes; there the streams are host lanes and the collectives go over gloo.
The data is a folder of random images made here, so the GPU machine needs no dataset.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from PIL import Image
from test_sync_free import RefuseHostReads

from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.data.feed import ResidentFeed
from gan_runner.data.images import ImageDatasetConfig, PixelSet
from gan_runner.data.stream import BatchStream
from gan_runner.train.distributed import in_buckets
from gan_runner.train.loop import Trainer

DEVICE = os.environ.get("GAN_RUNNER_TEST_DEVICE", "cuda")
CUDA = DEVICE == "cuda"
pytestmark = pytest.mark.skipif(CUDA and not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (scripts/device_check.sh)")
# the same float32 kernels, issued on two streams instead of one, may sum in another order
RTOL, ATOL = 1e-4, 1e-6
DCGAN = ["model=dcgan", "model.channels=8"]
STYLEGAN2 = ["experiment=stylegan2", "model.channel_max=16", "model.z_dim=32", "model.w_dim=32",
             "model.mapping_layers=2", "regularizer.r1.every=2",
             "regularizer.path_length.every=2"]
ADA = ["augment=ada", "augment.interval=1", "augment.p_init=0.2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 random 16x16 RGB images."""
    root = tmp_path_factory.mktemp("images")
    generator = torch.Generator().manual_seed(0)
    for i in range(64):
        pixels = torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=generator)
        Image.fromarray(pixels.numpy()).save(root / f"{i}.png")
    return root


@pytest.fixture
def trainer_for(folder: Path, tmp_path: Path):
    def build(overrides: list[str], run: str = "run") -> Trainer:
        cfg = compose_config([
            "dataset=image_folder", f"dataset.root={folder}", "dataset.resolution=16",
            "dataset.channels=3", "metrics=none", "trainer.batch_size=16", "trainer.kimg=0.064",
            "trainer.log_every_kimg=0.032", "trainer.snapshot_every_kimg=0.032",
            "trainer.grid_size=16", "trainer.progress=false", "trainer.resume=auto",
            "trainer.data_workers=0", f"trainer.device={DEVICE}", *overrides])
        return Trainer(validated(cfg), tmp_path / run, as_dict(cfg))

    return build


def phase_gradients(trainer: Trainer, name: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and D gradients of one run of phase ``name`` on fixed inputs."""
    phase = next(p for p in trainer.phases if p.name == name)
    generator = torch.Generator().manual_seed(1)
    env = {"z": torch.randn(16, trainer.state.G.z_dim, generator=generator).to(DEVICE),
           "real": torch.rand(16, 3, 16, 16, generator=generator).to(DEVICE) * 2 - 1}
    env["real"] = env["real"].contiguous(memory_format=trainer.memory_format)
    torch.manual_seed(2)  # the penalties' own draws
    loss, _ = trainer.scheduler.run(phase, env)
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in trainer.state.D.parameters()]


def assert_same_to_rounding(a: tuple[torch.Tensor, list[torch.Tensor]],
                            b: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    torch.testing.assert_close(a[0], b[0], rtol=RTOL, atol=ATOL)
    for x, y in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(x, y, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("model", [DCGAN, STYLEGAN2], ids=["dcgan", "stylegan2"])
def test_two_streams_give_the_sequential_losses_and_gradients_to_rounding(trainer_for, model):
    one, two = (trainer_for([*model, f"trainer.streams={s}"], s) for s in ("off", "2"))
    assert two.scheduler.lanes.count == 2
    phases = ["D_main", "D_reg"] if model is STYLEGAN2 else ["D_main"]
    for name in phases:
        assert_same_to_rounding(phase_gradients(one, name), phase_gradients(two, name))


def test_channels_last_gives_the_same_losses_and_gradients_to_rounding(trainer_for):
    plain, nhwc = (trainer_for([*DCGAN, f"trainer.channels_last={flag}"], flag)
                   for flag in ("false", "true"))
    assert_same_to_rounding(phase_gradients(plain, "D_main"), phase_gradients(nhwc, "D_main"))


SYNC_FREE = {"dcgan": DCGAN, "stylegan2 r1 pl ada": [*STYLEGAN2, *ADA],
             "dcgan bf16": [*DCGAN, "trainer.precision=bf16"],
             # fp16 on the CPU keeps the scaler's host read (no fused optimizer there)
             "dcgan fp16": [*DCGAN, "trainer.precision=fp16"] if CUDA else None}


@pytest.mark.parametrize("name", list(SYNC_FREE))
def test_iterations_never_wait_for_the_device(trainer_for, name):
    if SYNC_FREE[name] is None:
        pytest.skip("fp16's scaler reads its inf check on the host without a fused optimizer")
    trainer = trainer_for([*SYNC_FREE[name], "trainer.streams=2"])
    trainer.iteration()  # warm-up: optimizer state, the first ADA read, cuDNN's choices
    steps = [state["step"] for opt in (trainer.state.opt_G, trainer.state.opt_D)
             for state in opt.state.values() if "step" in state]
    if CUDA:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")  # blocking copies and stream syncs raise
    try:
        with RefuseHostReads(steps):
            for _ in range(4):
                trainer.iteration()
    finally:
        if CUDA:
            torch.cuda.set_sync_debug_mode("default")
    trainer.settle_nonfinite()
    assert trainer.state.skipped == 0


def test_fp16_loss_scales_survive_a_resume(trainer_for):
    first = trainer_for([*DCGAN, "trainer.precision=fp16"])
    first.run()
    saved = {net: scaler.state_dict() for net, scaler in first.state.scalers.items()}
    resumed = trainer_for([*DCGAN, "trainer.precision=fp16", "trainer.kimg=0.128"])
    assert resumed.resume() is not None
    assert {net: s.state_dict() for net, s in resumed.state.scalers.items()} == saved
    assert saved["D"]["scale"] > 0
    resumed.iteration()
    resumed.settle_nonfinite()
    assert resumed.state.skipped == first.state.skipped


def test_compile_trains_without_falling_back_to_eager(trainer_for, caplog):
    """DCGAN here; the benchmark compiles StyleGAN2 too, and reports it if that fails."""
    trainer = trainer_for([*DCGAN, "trainer.compile=true"])
    for _ in range(2):
        trainer.iteration()
    trainer.settle_nonfinite()
    assert "torch.compile failed" not in caplog.text
    assert trainer.state.skipped == 0


def test_the_resident_feed_indexes_on_the_device_what_the_host_would():
    cfg = ImageDatasetConfig(name="noise", resolution=8, hflip=True)
    data = PixelSet(torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8), cfg, "noise")
    stream, reference = BatchStream(data, 16, seed=0), BatchStream(data, 16, seed=0)
    feed = ResidentFeed(data, stream, lambda batch: batch, torch.device(DEVICE),
                        torch.contiguous_format)
    for _ in range(6):
        batch = feed.next()
        assert batch.device.type == DEVICE
        assert torch.equal(batch.cpu(), data.batch(reference.next_indices()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_one_rank_carries_the_loops_collectives_over_nccl():
    """The loop's backend (``distributed.init_from_env``): NCCL for CUDA tensors, gloo for the
    host's; one rank is what a single GPU can hold."""
    backend = "cpu:gloo,cuda:nccl" if CUDA else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        grads = [torch.ones(3, device=DEVICE), torch.full((2, 2), 2.0, device=DEVICE)]
        in_buckets(grads, dist.all_reduce)  # World.mean_ / average_gradients
        assert [g.sum().item() for g in grads] == [3.0, 8.0]
        parts = [torch.empty(4, device=DEVICE)]
        dist.all_gather(parts, torch.arange(4.0, device=DEVICE))  # World.gather
        assert parts[0].tolist() == [0.0, 1.0, 2.0, 3.0]
        in_buckets([torch.zeros(2, device=DEVICE)], lambda f: dist.broadcast(f, src=0))
        code = torch.tensor([15])
        dist.all_reduce(code, op=dist.ReduceOp.MAX)  # World.agreed_signal, on the host
        box = [{"fid": 1.0}]
        dist.broadcast_object_list(box, src=0)  # World.share
        found = [None]
        dist.gather_object("rng", found, dst=0)  # World.collect
        assert (int(code), box, found) == (15, [{"fid": 1.0}], ["rng"])
    finally:
        dist.destroy_process_group()
