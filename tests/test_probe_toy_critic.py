"""scripts/probe_toy_critic.py: a planar critic reads as a plane, with no peaks at the modes."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

from gan_runner.core.errors import UserError
from gan_runner.storage.checkpoint import load_checkpoint, save_checkpoint

from conftest import TINY_TOY

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "probe_toy_critic.py"
TINY_GRID = [o for o in TINY_TOY if not o.startswith("experiment=")] + ["experiment=toy_grid25"]


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("probe_toy_critic", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.probe


def newest(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1]


def test_a_critic_that_is_a_plane_has_r2_1_unit_gradients_and_no_peaks(make_trainer, tmp_path,
                                                                        probe):
    make_trainer(TINY_GRID, tmp_path / "run").run()
    payload = load_checkpoint(newest(tmp_path / "run"))
    # D(x) = 0.6 x + 0.8 y + 100: the bias keeps every LeakyReLU on its identity side
    state = payload["state"]["D"]
    for key in state:
        state[key] = torch.zeros_like(state[key])
    weights = sorted(k for k in state if k.endswith("weight"))  # net.0, net.2, ... in order
    first, *middle, last = weights
    state[first][0] = torch.tensor([0.6, 0.8])
    state[first.replace("weight", "bias")][0] = 100.0
    for key in middle:
        state[key][0, 0] = 1.0
    state[last][0, 0] = 1.0
    save_checkpoint(payload, tmp_path / "plane.pt")
    line = probe(tmp_path / "plane.pt")
    r2, median, peak = (float(v) for v in re.findall(
        r"R\^2 at the modes ([-\d.]+).*median ([-\d.]+).*away\) ([-\d.]+)", line)[0])
    assert (r2, median, peak) == (1.0, 1.0, 0.0)


def test_a_run_on_other_data_is_refused(make_trainer, tmp_path, probe):
    make_trainer(TINY_TOY, tmp_path / "ring").run()
    with pytest.raises(UserError, match="toy_ring8"):
        probe(newest(tmp_path / "ring"))
