"""The run log: metrics.jsonl rows, and the TensorBoard scalars, images and histograms read
back from the event files at the steps (images seen) they were logged at."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_runner.storage.runlog import RunLog, read_rows

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")


def read_events(run_dir):
    keep_all = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0,
                event_accumulator.HISTOGRAMS: 0}
    events = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), keep_all)
    events.Reload()
    return events


def tiny_net_with_one_frozen_layer() -> nn.Module:
    """A net after one backward pass in which its last layer was frozen (so it has no grads)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    net[2].requires_grad_(False)
    net(torch.randn(8, 3)).sum().backward()
    return net


def test_rows_go_to_jsonl_with_non_finite_numbers_as_null(tmp_path):
    runlog = RunLog(tmp_path, loggers=())
    runlog.write({"kind": "train", "kimg": 1.0, "loss/D": math.nan, "loss/G": 0.5})
    runlog.close()
    assert read_rows(tmp_path / "metrics.jsonl") == [
        {"kind": "train", "kimg": 1.0, "loss/D": None, "loss/G": 0.5}]
    assert not (tmp_path / "tensorboard").exists()


def test_numeric_fields_become_scalars_at_the_image_count(tmp_path):
    runlog = RunLog(tmp_path)
    runlog.write({"kind": "train", "kimg": 0.5, "loss/D": 1.5, "g_steps": 8})
    runlog.write({"kind": "train", "kimg": 1.0, "loss/D": 1.25, "g_steps": 16})
    runlog.write({"kind": "eval", "kimg": 1.0, "fid": 42.0, "features": "toy"})
    runlog.close()
    events = read_events(tmp_path)
    scalars = events.Tags()["scalars"]
    assert {"loss/D", "g_steps", "fid"} <= set(scalars)
    assert not {"kimg", "kind", "features"} & set(scalars)
    assert [(e.step, e.value) for e in events.Scalars("loss/D")] == [(500, 1.5), (1000, 1.25)]
    assert [(e.step, e.value) for e in events.Scalars("fid")] == [(1000, 42.0)]


def test_an_image_is_logged_at_its_step_with_its_size(tmp_path):
    runlog = RunLog(tmp_path)
    runlog.image("fakes", np.zeros((20, 30, 3), np.uint8), kimg=1.5)
    runlog.close()
    [image] = read_events(tmp_path).Images("fakes")
    assert (image.step, image.width, image.height) == (1500, 30, 20)


def test_histograms_hold_every_weight_and_the_grads_that_exist(tmp_path):
    net = tiny_net_with_one_frozen_layer()
    runlog = RunLog(tmp_path)
    runlog.histograms("D", net, kimg=2.0)
    runlog.histograms("D", net, kimg=4.0)
    runlog.close()
    events = read_events(tmp_path)
    tags = set(events.Tags()["histograms"])
    assert tags == {"D/weights/0.weight", "D/weights/0.bias", "D/weights/2.weight",
                    "D/weights/2.bias", "D/grads/0.weight", "D/grads/0.bias"}
    weight = events.Histograms("D/weights/0.weight")
    assert [h.step for h in weight] == [2000, 4000]
    values = weight[0].histogram_value
    assert values.num == 12
    assert values.min == pytest.approx(net[0].weight.min().item())
    assert values.max == pytest.approx(net[0].weight.max().item())
    grads = events.Histograms("D/grads/0.bias")[0].histogram_value
    assert grads.max == pytest.approx(net[0].bias.grad.max().item())


def test_histograms_skip_what_has_no_finite_value_instead_of_failing(tmp_path):
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.fill_(math.nan)
        net.bias[0] = math.inf
    runlog = RunLog(tmp_path)
    runlog.histograms("G", net, kimg=1.0)
    runlog.close()
    events = read_events(tmp_path)
    assert events.Tags()["histograms"] == ["G/weights/bias"]
    assert events.Histograms("G/weights/bias")[0].histogram_value.num == 1


def test_histograms_without_tensorboard_do_nothing(tmp_path):
    runlog = RunLog(tmp_path, loggers=())
    runlog.histograms("G", nn.Linear(2, 2), kimg=1.0)
    runlog.close()
    assert not (tmp_path / "tensorboard").exists()
