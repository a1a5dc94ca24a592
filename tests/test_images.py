"""The pictures of samples: scatter plots of 2-D points."""

from __future__ import annotations

import numpy as np
import torch

from gan_runner.storage.images import scatter


def test_a_scatter_frames_each_mode_so_samples_on_it_and_empty_modes_both_show():
    modes = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    on_first_mode = modes[:1].repeat(50, 1)
    picture = scatter(on_first_mode, modes, size=101, extent=2.0)
    red = np.array([220, 30, 30])
    (left, right) = [(50, round((x / 2 + 1) * 0.5 * 100)) for x in (-1.0, 1.0)]
    assert (picture[left] == 0).all()  # the samples, black, not hidden under the marker
    assert (picture[right] == 255).all()  # a dropped mode: white inside its frame
    for row, col in (left, right):
        assert (picture[row + 6, col] == red).all() and (picture[row, col - 7] == red).all()
