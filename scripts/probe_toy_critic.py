"""What shape the critic of a 2-D grid run has: a plane across the grid, or peaks at the modes.

    python scripts/probe_toy_critic.py outputs/toy/losses/4/checkpoints/ckpt-003000064.pt ...

For each checkpoint of a ``toy_grid25`` run it prints: how well a plane fits D at the 25 mode
centres (R^2 near 1: D only ranks the modes by position, so nothing holds a sample at one);
the median (10-90%) of |grad D| over the square around the grid (about 1 everywhere is what
the WGAN-GP penalty asks for); and how much higher D is at a mode than 0.3 (6 std) away from
it, averaged over the 25 modes and four directions (the peaks that pull samples onto modes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gan_runner.core.errors import UserError
from gan_runner.data.toy import mode_centers
from gan_runner.storage.run_checkpoint import RunCheckpoint

DIRECTIONS = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
AWAY_STDS = 6.0  # twice the 3 std within which a sample counts as on the mode


def probe(path: Path) -> str:
    checkpoint = RunCheckpoint.load(path)
    dataset = checkpoint.config["dataset"]
    if dataset["name"] != "toy_grid25":
        raise UserError(f"{path} was trained on {dataset['name']}", "pass a toy_grid25 run")
    D = checkpoint.discriminator()
    centres = mode_centers("toy_grid25", dataset["scale"])
    with torch.no_grad():
        at_modes = D(centres)
        around = D((centres[:, None] + DIRECTIONS * AWAY_STDS * dataset["std"]).reshape(-1, 2))
    plane = torch.cat([centres, torch.ones(len(centres), 1)], dim=1)
    fit = plane @ torch.linalg.lstsq(plane, at_modes[:, None]).solution.squeeze(1)
    r2 = 1 - (fit - at_modes).square().sum() / (at_modes - at_modes.mean()).square().sum()
    half = 2.5 * dataset["scale"]  # the square the scatter plots show
    points = ((torch.rand(4000, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1)
              * half).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(points).sum(), points)
    norms = grad.norm(dim=1)
    peak = (at_modes[:, None] - around.reshape(len(centres), -1)).mean()
    return (f"{path}: plane R^2 at the modes {r2:.3f}; |grad D| median {norms.median():.2f} "
            f"(10-90%: {norms.quantile(0.1):.2f}-{norms.quantile(0.9):.2f}); "
            f"D(mode) - D({AWAY_STDS:g} std away) {peak:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.checkpoints:
        try:
            print(probe(path))
        except UserError as error:
            parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
