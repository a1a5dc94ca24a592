"""A few CPU steps for each model x data kind; the same seed trains the same weights."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from gan_runner.core.errors import UserError
from gan_runner.storage.checkpoint import list_checkpoints
from gan_runner.storage.run_checkpoint import RunCheckpoint
from gan_runner.storage.runlog import read_rows

from conftest import TINY_FMNIST, TINY_TOY, assert_same, needs_fmnist


def weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in module.state_dict().values()]


def test_toy_run_writes_logs_samples_checkpoints_and_summary(make_trainer, tmp_path):
    trainer = make_trainer(TINY_TOY)
    summary = trainer.run()
    run = tmp_path / "run"
    rows = read_rows(run / "metrics.jsonl")
    assert [r["kimg"] for r in rows] == [0.064, 0.128]
    for key in ("loss/D", "loss/G", "grad_norm/D", "grad_norm/G", "lr/G", "lr/D",
                "sec_per_kimg", "D/accuracy", "D/real_sign"):
        assert all(key in r and r[key] == r[key] for r in rows), key  # present and not NaN
    assert all(-1 <= r["D/real_sign"] <= 1 for r in rows)  # r_t, logged with or without ADA
    assert (run / "samples" / "reals.png").exists()
    assert (run / "samples" / "fakes_000000kimg.png").exists()
    assert len(list((run / "checkpoints").glob("ckpt-*.pt"))) == 2
    assert summary["kimg"] == pytest.approx(0.128)
    assert json.loads((run / "summary.json").read_text())["kimg"] == pytest.approx(0.128)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


@needs_fmnist
def test_dcgan_on_fashion_mnist_trains_and_draws_a_grid(make_trainer, tmp_path):
    trainer = make_trainer(TINY_FMNIST)
    before = weights(trainer.state.G)
    trainer.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(trainer.state.G),
                                                     strict=True))
    grid = Image.open(tmp_path / "run" / "samples" / "fakes_000000kimg.png")
    assert grid.size == (4 * 33 + 1, 4 * 33 + 1)  # 16 images of 32 px, 1 px borders


def test_dcgan_on_an_image_folder_trains(make_trainer, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (24 + i, 20), (30 * i, 100, 200)).save(folder / f"{i}.jpg")
    trainer = make_trainer(["dataset=image_folder", f"dataset.root={folder}",
                            "dataset.resolution=16",
                            *(o for o in TINY_FMNIST if not o.startswith("dataset."))])
    trainer.run()
    assert trainer.state.G(torch.randn(2, trainer.state.G.z_dim)).shape == (2, 3, 16, 16)


def test_same_seed_gives_bit_identical_weights(make_trainer, tmp_path):
    first = make_trainer(TINY_TOY, tmp_path / "a")
    first.run()
    second = make_trainer(TINY_TOY, tmp_path / "b")
    second.run()
    for net in ("G", "D", "G_ema"):
        a, b = weights(getattr(first.state, net)), weights(getattr(second.state, net))
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), net
    third = make_trainer([*TINY_TOY, "trainer.seed=1"], tmp_path / "c")
    third.run()
    assert not all(torch.equal(x, y) for x, y in zip(weights(first.state.G),
                                                     weights(third.state.G), strict=True))


TINY_STYLEGAN2 = [*(o for o in TINY_FMNIST if not o.startswith("model.")),
                  "model=stylegan2_tiny", "model.z_dim=8", "model.w_dim=8",
                  "model.mapping_layers=2", "model.channel_base=64", "model.channel_max=8"]


@pytest.mark.parametrize("overrides", [
    pytest.param(TINY_TOY, id="ns"),
    pytest.param([*TINY_TOY, "loss=wgan"], id="wgan: rmsprop and weight clipping"),
    pytest.param([*TINY_TOY, "optimizer.lr_schedule=linear"], id="linear lr schedule"),
    pytest.param([*TINY_TOY, "loss.real_label=0.9", "loss.instance_noise_std=0.1",
                  "loss.instance_noise_kimg=0.1"],
                 id="label smoothing and instance noise"),
    pytest.param([*TINY_FMNIST, "augment=ada", "augment.p_init=0.3", "augment.interval=1",
                  "augment.ada_kimg=1"], id="ada with p moving every step",
                 marks=needs_fmnist),
    pytest.param([*TINY_STYLEGAN2, "regularizer=[r1,path_length]", "regularizer.r1.every=2",
                  "regularizer.path_length.every=2"],
                 id="stylegan2_tiny with lazy r1 and path length", marks=needs_fmnist),
    pytest.param([*TINY_FMNIST, "conditioning=acgan", "regularizer=r1"],
                 id="acgan with r1 on a conditional D", marks=needs_fmnist),
    pytest.param([*TINY_TOY, "conditioning=infogan"], id="infogan codes and Q head"),
])
def test_resumed_run_matches_the_uninterrupted_one(make_trainer, tmp_path, overrides):
    """A run stopped halfway (its checkpoint there, nothing after) and resumed with the same
    command ends with everything a checkpoint holds bit-identical to the uninterrupted run:
    weights, optimizer moments, augmentation and penalty statistics, counters, data position
    and random streams."""
    full = make_trainer(overrides, tmp_path / "full")
    full.run()
    final, *earlier = list_checkpoints(tmp_path / "full" / "checkpoints")
    halfway = earlier[0]
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copy(halfway, tmp_path / "resumed" / "checkpoints")
    resumed = make_trainer(overrides, tmp_path / "resumed")  # resume=auto finds it
    assert resumed.run()["resumed_from"].endswith(halfway.name)
    assert RunCheckpoint.load(halfway).nimg * 2 == resumed.state.nimg == full.state.nimg
    assert_same(RunCheckpoint.load(tmp_path / "resumed" / "checkpoints" / final.name).state,
                RunCheckpoint.load(final).state)


def test_a_linear_schedule_steps_with_the_lr_share_left_at_each_iterations_start(make_trainer,
                                                                                 tmp_path):
    constant = make_trainer(TINY_TOY, tmp_path / "constant")
    constant.run()
    linear = make_trainer([*TINY_TOY, "optimizer.lr_schedule=linear"], tmp_path / "linear")
    linear.run()
    base, decayed = (read_rows(path / "metrics.jsonl") for path in (tmp_path / "constant",
                                                                    tmp_path / "linear"))
    # batch 32 of a 128-image run: each row's last step began at 96 resp. 32 images from the end
    for row, unscaled, share in zip(decayed, base, (0.75, 0.25), strict=True):
        for net in ("G", "D"):
            assert row[f"lr/{net}"] == pytest.approx(unscaled[f"lr/{net}"] * share)


def test_d_steps_runs_several_critic_steps_per_generator_step(make_trainer):
    trainer = make_trainer([*TINY_TOY, "trainer.d_steps=4"])
    trainer.run()
    assert trainer.state.d_steps == 4 * trainer.state.g_steps


def test_ema_generator_differs_from_the_live_one_but_stays_close(make_trainer):
    """An average over the live generator's recent weights: not equal to them, and nearer to
    them than the weights the run started from."""
    trainer = make_trainer([*TINY_TOY, "trainer.kimg=0.512"])
    start = weights(trainer.state.G)
    trainer.run()
    live, ema = weights(trainer.state.G), weights(trainer.state.G_ema)

    def distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        return sum((x.float() - y.float()).square().sum() for x, y in zip(a, b, strict=True))

    assert 0 < distance(ema, live) < distance(start, live) / 100


def test_resuming_with_a_different_model_is_refused(make_trainer, tmp_path):
    make_trainer(TINY_TOY, tmp_path / "run").run()
    with pytest.raises(UserError, match="different model config"):
        make_trainer([*TINY_TOY, "model.hidden=16", "trainer.kimg=0.256"],
                     tmp_path / "run").run()


def test_a_moved_dataset_still_resumes(make_trainer, tmp_path):
    make_trainer([*TINY_TOY, "trainer.kimg=0.064"], tmp_path / "run").run()
    summary = make_trainer([*TINY_TOY, "dataset.num_samples=5000"], tmp_path / "run").run()
    assert summary["resumed_from"] is not None
