"""``gan-sample``: images from a checkpoint's EMA generator, one fixed latent per seed.

``gan-sample ckpt=outputs/.../checkpoints/ckpt-000100000.pt seeds=0-63 out=grid.png``
Each seed gives the same image on any machine: its latent is drawn on the CPU from that seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from gan_runner.cli.args import Arg, parse_args, parse_seeds
from gan_runner.cli.errors import run_reporting_errors
from gan_runner.config.store import register_configs
from gan_runner.data.datasets import to_uint8
from gan_runner.io.images import samples_picture, save_png
from gan_runner.models.base import generate
from gan_runner.train.build import generator_from_checkpoint, select_device

USAGE = "usage: gan-sample ckpt=PATH [seeds=0-63] [out=samples.png] [individual=DIR] [psi=1.0]"
SPEC = {
    "ckpt": Arg(Path, None, "a ckpt-*.pt written by gan-train", required=True),
    "seeds": Arg(parse_seeds, "0-63", "seeds, e.g. 0-63 or 1,5,9"),
    "out": Arg(Path, "samples.png", "the PNG grid to write"),
    "individual": Arg(Path, None, "also write one PNG per seed into this folder"),
    "psi": Arg(float, "1.0", "truncation psi (models with a mapping network)"),
    "device": Arg(str, "auto", "auto | cpu | cuda"),
}


def latents_for_seeds(seeds: list[int], z_dim: int) -> torch.Tensor:
    return torch.cat([torch.randn(1, z_dim, generator=torch.Generator().manual_seed(s))
                      for s in seeds])


def sample(argv: list[str]) -> None:
    args = parse_args(argv, SPEC, USAGE)
    register_configs()
    device = select_device(args["device"])
    G, _ = generator_from_checkpoint(args["ckpt"], device)
    z = latents_for_seeds(args["seeds"], G.z_dim).to(device)
    with torch.no_grad():
        images = generate(G, z, args["psi"]).cpu()
    save_png(samples_picture(images), args["out"])
    print(f"wrote {args['out']} ({len(images)} samples)")
    if args["individual"] is not None and images.dim() == 4:
        for seed, image in zip(args["seeds"], images, strict=True):
            save_png(to_uint8(image).permute(1, 2, 0).numpy(),
                     args["individual"] / f"seed{seed:04d}.png")
        print(f"wrote {len(images)} images to {args['individual']}")


def main() -> None:
    run_reporting_errors(lambda: sample(sys.argv[1:]))


if __name__ == "__main__":
    main()
