"""The training feed: sets that fit are indexed on the device, the others come through loader
workers, and either way a step sees exactly the stream's batches."""

from __future__ import annotations

import pytest
import torch

from gan_runner.data.feed import LoaderFeed, ResidentFeed, build_feed
from gan_runner.data.images import ImageDatasetConfig, ImageSet, PixelSet, in_memory
from gan_runner.data.stream import BatchStream
from gan_runner.storage.runlog import read_rows

from conftest import TINY_TOY

CFG = ImageDatasetConfig(name="noise", resolution=8, hflip=True)
CPU = torch.device("cpu")


def pixels(count: int = 10) -> torch.Tensor:
    return torch.randint(0, 256, (count, 1, 8, 8), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


def whole(batch: torch.Tensor) -> torch.Tensor:
    return batch  # a world of one rank: its slice is the global batch


def decoded_on_demand(images: torch.Tensor) -> ImageSet:
    return ImageSet(lambda idx: images[idx], len(images), CFG, "decoded")


def expected_batches(data, count: int, batch_size: int = 4) -> list[torch.Tensor]:
    stream = BatchStream(data, batch_size, seed=1)
    return [data.batch(stream.next_indices()) for _ in range(count)]


def feed_of(data, workers: int = 0):
    return build_feed(data, BatchStream(data, 4, seed=1), whole, CPU, torch.contiguous_format,
                      workers)


def test_a_set_in_memory_is_fed_from_the_device_and_one_decoded_on_demand_through_a_loader():
    assert isinstance(feed_of(in_memory(pixels(), CFG, "noise")), ResidentFeed)
    assert isinstance(feed_of(decoded_on_demand(pixels())), LoaderFeed)


def test_an_x_flipped_index_reads_the_mirrored_image():
    data = in_memory(pixels(), CFG, "noise")
    assert len(data) == 20
    assert torch.equal(data.uint8_batch(torch.tensor([13])), pixels()[3:4].flip(-1))
    assert torch.equal(data.on_device(CPU).batch(torch.tensor([3, 13])), data.batch(
        torch.tensor([3, 13])))


@pytest.mark.parametrize("workers", [0, 2])
def test_every_feed_gives_the_streams_batches(workers):
    images = pixels()
    for data in (in_memory(images, CFG, "noise"), decoded_on_demand(images)):
        stream = BatchStream(data, 4, seed=1)
        feed = build_feed(data, stream, whole, CPU, torch.contiguous_format, workers)
        got = [feed.next() for _ in range(7)]  # more than an epoch of 20
        assert all(torch.equal(a, b) for a, b in zip(got, expected_batches(data, 7),
                                                     strict=True))
        assert stream.state_dict() == {"epoch": 1, "position": 8}  # the live stream moved along


def test_a_loader_follows_the_live_stream_when_it_moves():
    """A resume sets the stream's position; batches decoded ahead from the old one are dropped."""
    data = decoded_on_demand(pixels())
    stream = BatchStream(data, 4, seed=1)
    feed = build_feed(data, stream, whole, CPU, torch.contiguous_format, workers=2)
    feed.next()
    stream.load_state_dict({"epoch": 3, "position": 8})
    reference = BatchStream(data, 4, seed=1)
    reference.load_state_dict({"epoch": 3, "position": 8})
    assert torch.equal(feed.next(), data.batch(reference.next_indices()))


def test_the_feed_reports_the_mean_wait_per_batch_once():
    feed = feed_of(PixelSet(pixels(), CFG, "noise"))
    assert feed.take_wait() is None
    feed.next()
    feed.next()
    assert feed.take_wait() >= 0 and feed.take_wait() is None


def test_training_rows_carry_the_data_wait(make_trainer):
    trainer = make_trainer(TINY_TOY)
    trainer.run()
    rows = [r for r in read_rows(trainer.run_dir / "metrics.jsonl") if r["kind"] == "train"]
    assert all(row["time/data_wait"] >= 0 for row in rows)
