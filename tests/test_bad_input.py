"""Mistakes a user can make (issue 6): one line, exit status 2, no traceback, and an existing
run left as it was.

Every case is a real ``gan-train`` process re-run in the directory of an earlier good run (as a
user continuing a run would), and every file that run wrote (checkpoints, metrics.jsonl,
summary.json, samples, TensorBoard events) must be byte-identical afterwards. Hydra records
each attempt in ``.hydra/`` and ``train.log``, which the good run here does not have.
Unit-level checks of the same rules live in test_config.py, test_data.py and
test_checkpoint.py; in-process refusals of a different model in test_training.py.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_one_line_error, run

from gan_runner.config.compose import as_dict, compose_config, validated
from gan_runner.storage.checkpoint import checkpoint_path, load_checkpoint
from gan_runner.train.loop import Trainer

TRAIN = ["debug=fast", "model.channels=8"]
GOOD_KIMG, MORE_KIMG = "trainer.kimg=0.064", "trainer.kimg=0.128"  # 4 steps, then 4 more
LAST = checkpoint_path(Path("checkpoints"), 64)  # the good run's newest, relative to its folder


def folder_args(root: Path | str) -> list[str]:
    return ["dataset=image_folder", f"dataset.root={root}", "dataset.resolution=16"]


def write_images(folder: Path, count: int = 8) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (20, 16 + i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


@dataclass(frozen=True)
class GoodRun:
    images: Path
    run_dir: Path

    def args(self) -> list[str]:
        """The command that continues the good run, before a mistake is appended."""
        return [*folder_args(self.images), *TRAIN, MORE_KIMG]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> GoodRun:
    """One good DCGAN run on a tiny image folder, trained in-process (the same Trainer the CLI
    runs) to save a process start."""
    base = tmp_path_factory.mktemp("good")
    images = write_images(base / "images")
    cfg = compose_config([*folder_args(images), *TRAIN, GOOD_KIMG])
    Trainer(validated(cfg), base / "run", as_dict(cfg)).run()
    return GoodRun(images, base / "run")


@pytest.fixture
def run_dir(good: GoodRun, tmp_path: Path) -> Path:
    """A private copy of the good run that a test may re-run in."""
    return shutil.copytree(good.run_dir, tmp_path / "run")


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def checkpoint_files(run_dir: Path) -> list[str]:
    folder = run_dir / "checkpoints"
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def gan_train_refuses(args: list[str], run_dir: Path, *fragments: str, kept: str = ".") -> None:
    """``gan-train ARGS`` in ``run_dir`` fails with one line holding ``fragments``, leaves every
    file under ``run_dir / kept`` as it was and adds no checkpoint (nor a temporary file)."""
    before, checkpoints = digests(run_dir / kept), checkpoint_files(run_dir)
    result = run("gan-train", *args, f"hydra.run.dir={run_dir}", cwd=run_dir.parent)
    assert_one_line_error(result, *fragments)
    after = digests(run_dir / kept)
    assert {name: after.get(name) for name in before} == before
    assert checkpoint_files(run_dir) == checkpoints


# ---------------------------------------------------------------- the config
@pytest.mark.parametrize("mistake,fragments", [
    pytest.param(["trainer.bacth_size=8"],
                 ["trainer.bacth_size is not a known setting", "gan-train --cfg job"],
                 id="unknown option"),
    pytest.param(["+trainer.bacth_size=8"],  # + gets past Hydra; nothing would read it
                 ["trainer.bacth_size is not a known setting", "gan-train --cfg job"],
                 id="unknown option added with +"),
    pytest.param(["loss=hing"], ["unknown loss option 'hing'", "choose one of:", "hinge"],
                 id="unknown group option"),
    pytest.param(["lossy=hinge"], ["lossy is not a known setting", "gan-train --cfg job"],
                 id="unknown group"),
    pytest.param(["trainer.batch_size=eight"],
                 ["trainer.batch_size=eight is not valid", "expected a value of type Integer"],
                 id="wrong type"),
    pytest.param(["optimizer.g_lr=0"],
                 ["optimizer.g_lr=0.0 is not valid", "expected a positive number"],
                 id="zero lr"),
    pytest.param(["trainer.batch_size=-4"],
                 ["trainer.batch_size=-4 is not valid", "expected a positive batch size"],
                 id="negative batch"),
    pytest.param(["trainer.kimg=0"],
                 ["trainer.kimg=0.0 is not valid", "expected a positive training length"],
                 id="zero kimg"),
    pytest.param(["dataset.resolution=48"],
                 ["model=dcgan cannot build dataset.resolution=48", "use a power of two"],
                 id="resolution the model cannot build"),
])
def test_a_config_mistake_is_refused(good, run_dir, mistake, fragments):
    gan_train_refuses([*good.args(), *mistake], run_dir, *fragments)


# ---------------------------------------------------------------- the data
@pytest.mark.parametrize("dataset,fragments", [
    pytest.param(["dataset=image_folder", "dataset.root={missing}"],
                 ["is not a folder", "check the path"], id="image folder"),
    pytest.param(["dataset=image_folder", "dataset.root=null"],
                 ["dataset=image_folder needs a folder", "pass dataset.root=DIR"],
                 id="image folder not given"),
    pytest.param(["dataset=fashion_mnist", "dataset.root={missing}"],
                 ["has no Fashion-MNIST files", "dataset.download=true"],
                 id="fashion-mnist"),
])
def test_a_missing_dataset_folder_is_refused(run_dir, dataset, fragments):
    missing = run_dir.parent / "nowhere"
    args = [a.format(missing=missing) for a in dataset]
    gan_train_refuses([*args, *TRAIN, MORE_KIMG], run_dir, *fragments)


def test_an_image_folder_without_images_is_refused(run_dir):
    empty = run_dir.parent / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("the images were moved")
    gan_train_refuses([*folder_args(empty), *TRAIN, MORE_KIMG], run_dir,
                      f"no images under dataset.root={empty}", "expected files ending in")


def _not_an_image(path: Path) -> str:
    path.with_suffix(".png").write_bytes(b"<html>404 Not Found</html>")
    return "not an image file"


def _truncated_jpeg(path: Path) -> str:
    """Cut image data: PIL's cheap ``verify`` passes it, only decoding finds the damage."""
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path.with_suffix(".jpg"), quality=95)
    data = path.with_suffix(".jpg").read_bytes()
    path.with_suffix(".jpg").write_bytes(data[: len(data) * 4 // 5])
    with Image.open(path.with_suffix(".jpg")) as image:
        image.verify()
    return "image file is truncated"


@pytest.mark.parametrize("damage", [_not_an_image, _truncated_jpeg],
                         ids=["not an image", "truncated jpeg"])
def test_an_unreadable_image_is_named(good, run_dir, damage):
    images = shutil.copytree(good.images, run_dir.parent / "images")
    reason = damage(images / "broken")
    broken = next(images.glob("broken.*"))
    gan_train_refuses([*good.args(), f"dataset.root={images}"], run_dir,
                      f"cannot read image {broken}: {reason}", "remove or replace the file")


# ---------------------------------------------------------------- checkpoints
def test_resume_auto_refuses_a_checkpoint_of_another_model_width(good, run_dir):
    gan_train_refuses([*good.args(), "model.channels=16"], run_dir,
                      f"checkpoint {run_dir / LAST} was trained with a different model config",
                      "model.channels: 8 in the checkpoint, 16 now",
                      "resume with the same model options")


def test_resume_from_a_path_refuses_a_checkpoint_of_another_model_width(good, run_dir):
    elsewhere = run_dir.parent / "new_run"
    before = digests(run_dir)
    gan_train_refuses([*good.args(), "model.channels=16", f"trainer.resume={run_dir / LAST}"],
                      elsewhere, "was trained with a different model config")
    assert digests(run_dir) == before
    assert not (elsewhere / "checkpoints").exists()


def _text_file(path: Path, good_checkpoint: Path) -> str:
    path.write_text("not a checkpoint")
    return "not a gan_runner checkpoint"


def _truncated_checkpoint(path: Path, good_checkpoint: Path) -> str:
    path.write_bytes(good_checkpoint.read_bytes()[:-100])
    return "is corrupt (checksum mismatch)"


@pytest.mark.parametrize("make", [_text_file, _truncated_checkpoint],
                         ids=["text file", "truncated checkpoint"])
def test_resume_from_a_file_that_is_not_a_checkpoint_is_refused(good, run_dir, make):
    bogus = run_dir.parent / "ckpt.pt"
    reason = make(bogus, run_dir / LAST)
    content = bogus.read_bytes()
    gan_train_refuses([*good.args(), f"trainer.resume={bogus}"], run_dir, reason)
    assert bogus.read_bytes() == content


def test_resume_auto_refuses_a_run_whose_checkpoints_are_all_damaged(good, run_dir):
    for path in (run_dir / "checkpoints").glob("ckpt-*.pt"):
        path.write_bytes(path.read_bytes()[:-100])
    gan_train_refuses(good.args(), run_dir, "trainer.resume=null")


# ---------------------------------------------------------------- a full disk
FULL = Path("/dev/full")  # every write to it fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not FULL.exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(good, run_dir):
    """The next checkpoint's temporary file is a link to /dev/full, so the real write fails
    with ENOSPC after 2 steps of training; nothing is left that would stop a resume."""
    next_one = checkpoint_path(run_dir / "checkpoints", 96)
    next_one.with_name(f".{next_one.name}.tmp").symlink_to(FULL)
    gan_train_refuses(good.args(), run_dir,
                      f"could not write checkpoint {next_one}: No space left on device",
                      "free some space, then run the same command", kept="checkpoints")
    assert load_checkpoint(run_dir / LAST)["state"]["counters"]["nimg"] == 64


@pytest.mark.skipif(not FULL.exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_while_drawing_samples_stops_with_one_line(good, run_dir):
    """Any write may hit a full disk first; here the sample picture of the next snapshot."""
    picture = run_dir / "samples" / "fakes_000000kimg.png"
    picture.unlink()
    picture.symlink_to(FULL)
    gan_train_refuses(good.args(), run_dir, "disk full", "No space left on device",
                      "free some space, then run the same command again", kept="checkpoints")
    assert load_checkpoint(run_dir / LAST)["state"]["counters"]["nimg"] == 64
