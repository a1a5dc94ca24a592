"""``gan-sample``: pictures from a trained EMA generator, one fixed latent per seed.

``gan-sample ckpt=outputs/.../checkpoints/ckpt-000100000.pt seeds=0-63 out=grid.png``; ``ckpt=``
also takes a generator file written by ``gan-export`` (``G.safetensors``).
Each seed gives the same latent on any machine: it is drawn on the CPU from that seed.
``mode=mixing`` and ``mode=interp`` draw the style-mixing figure and an interpolation strip
(the latent work lives in ``gan_runner.models.latents``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gan_runner.cli.args import Arg, parse_args, parse_seeds
from gan_runner.cli.errors import run_reporting_errors
from gan_runner.core.devices import select_device
from gan_runner.core.errors import UserError
from gan_runner.data.datasets import to_uint8
from gan_runner.models.latents import (
    STYLE_RANGES,
    has_mapping,
    images_for_latents,
    interpolation,
    latents_for_seeds,
    style_layers,
    style_mixing,
)
from gan_runner.storage.generator_file import TrainedGenerator, load_generator
from gan_runner.storage.images import image_grid, samples_picture, save_png

USAGE = "usage: gan-sample ckpt=PATH [mode=grid|mixing|interp] [key=value ...]"
MODES = ("grid", "mixing", "interp")


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"choose one of: {', '.join(options)}")
        return text
    return parse


def at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if int(text) < low:
            raise ValueError(f"expected an integer of at least {low}")
        return int(text)
    return parse


def parse_styles(text: str) -> list[int | str]:
    """Layers written as seeds are (``0-3``, ``1,5``) or by range name (``coarse``); which
    layers a name means depends on the generator, so names stay names here."""
    tokens: list[int | str] = []
    for part in text.split(","):
        try:
            tokens.extend([part] if part in STYLE_RANGES else parse_seeds(part))
        except ValueError:
            raise ValueError(f"use layer indices such as 0-3, or {', '.join(STYLE_RANGES)}"
                             ) from None
    return tokens


SPEC = {
    "ckpt": Arg(Path, None, "a ckpt-*.pt written by gan-train, or a gan-export .safetensors",
                required=True),
    "mode": Arg(choice(*MODES), "grid", "grid, mixing (style mixing) or interp (a strip)"),
    "seeds": Arg(parse_seeds, "0-63", "seeds, e.g. 0-63 or 1,5,9 (interp: the path's stops)"),
    "out": Arg(Path, None, "the PNG to write (default: samples.png, mixing.png, interp.png)"),
    "individual": Arg(Path, None, "grid: also write one PNG per seed into this folder"),
    "psi": Arg(float, "1.0", "truncation psi (models with a mapping network)"),
    "cutoff": Arg(at_least(0), None, "truncate only the first N styles (mixing, interp)"),
    "rows": Arg(parse_seeds, None, "mixing: seeds whose styles are kept, one per row"),
    "cols": Arg(parse_seeds, None, "mixing: seeds that lend their styles, one per column"),
    "styles": Arg(parse_styles, "0-3", "mixing: layers taken from the column seed "
                  f"(indices or {', '.join(STYLE_RANGES)})"),
    "steps": Arg(at_least(2), "8", "interp: images from one seed to the next, both included"),
    "space": Arg(choice("z", "w"), "z", "interp: slerp in z, or lerp in w (mapping network)"),
    "device": Arg(str, "auto", "auto | cpu | cuda"),
}
COMMON_KEYS = {"ckpt", "mode", "out", "psi", "device"}
MODE_KEYS = {"grid": {"seeds", "individual"},
             "mixing": {"rows", "cols", "styles", "cutoff"},
             "interp": {"seeds", "steps", "space", "cutoff"}}
REQUIRED_KEYS = {"grid": (), "mixing": ("rows", "cols"), "interp": ("seeds",)}
EXAMPLES = {"mixing": "e.g. mode=mixing rows=0-5 cols=10-14 styles=coarse",
            "interp": "e.g. mode=interp seeds=1,2,3 steps=8 space=w"}


def check_mode_keys(mode: str, argv: list[str], seeds: list[int]) -> None:
    """A key of another mode would be silently ignored, and the default seed list makes no
    sense as interpolation stops: both are refused before the checkpoint is read."""
    given = {item.partition("=")[0] for item in argv}
    for key in sorted(given - COMMON_KEYS - MODE_KEYS[mode]):
        owners = " or ".join(f"mode={m}" for m in MODES if key in MODE_KEYS[m])
        raise UserError(f"{key}= does not apply to mode={mode}", f"it is for {owners}")
    missing = [key for key in REQUIRED_KEYS[mode] if key not in given]
    if missing:
        raise UserError(f"mode={mode} needs {' and '.join(k + '=' for k in missing)}",
                        EXAMPLES[mode])
    if mode == "interp" and len(seeds) < 2:
        raise UserError("mode=interp needs at least two seeds", EXAMPLES[mode])


def require_mapping(trained: TrainedGenerator, what: str) -> None:
    if not has_mapping(trained.G):
        raise UserError(f"{what} needs a generator with a mapping network (z -> w), and "
                        f"model={trained.model_name} has none", "use a checkpoint trained with "
                        "model=stylegan2, stylegan or stylegan2_tiny")


def write_grid(trained: TrainedGenerator, args: dict[str, Any], out: Path) -> None:
    if args["individual"] is not None and not trained.spec.is_image:
        raise UserError("individual= writes one PNG per image, and this checkpoint makes 2-D "
                        "points", "drop individual=: the grid is a scatter plot of them")
    G = trained.G
    device = next(G.parameters()).device
    z = latents_for_seeds(args["seeds"], G.z_dim).to(device)
    images = images_for_latents(G, z, args["psi"]).cpu()  # fixed noise: a seed is one image
    save_png(samples_picture(images), out)
    print(f"wrote {out} ({len(images)} samples)")
    if args["individual"] is not None:
        for seed, image in zip(args["seeds"], images, strict=True):
            save_png(to_uint8(image).permute(1, 2, 0).numpy(),
                     args["individual"] / f"seed{seed:04d}.png")
        print(f"wrote {len(images)} images to {args['individual']}")


def write_mixing(trained: TrainedGenerator, args: dict[str, Any], out: Path) -> None:
    require_mapping(trained, "mode=mixing")
    G = trained.G
    layers = style_layers(args["styles"], G.mapping.num_ws)
    figure = style_mixing(G, args["rows"], args["cols"], layers, args["psi"], args["cutoff"])
    save_png(image_grid(figure.tiles(), nrow=len(args["cols"]) + 1), out)
    print(f"wrote {out} ({len(args['rows'])} rows x {len(args['cols'])} columns, "
          f"styles {','.join(map(str, layers))} from the columns)")


def write_interp(trained: TrainedGenerator, args: dict[str, Any], out: Path) -> None:
    if not trained.spec.is_image:
        raise UserError("mode=interp draws a strip of images, and this checkpoint makes 2-D "
                        "points", "use mode=grid")
    if args["space"] == "w":
        require_mapping(trained, "space=w")
    strip = interpolation(trained.G, args["seeds"], args["steps"], args["space"], args["psi"],
                          args["cutoff"])
    save_png(image_grid(strip, nrow=len(strip)), out)
    print(f"wrote {out} ({len(strip)} images, {args['space']}-space path through seeds "
          f"{','.join(map(str, args['seeds']))})")


WRITERS = {"grid": write_grid, "mixing": write_mixing, "interp": write_interp}
DEFAULT_OUT = {"grid": "samples.png", "mixing": "mixing.png", "interp": "interp.png"}


def sample(argv: list[str]) -> None:
    args = parse_args(argv, SPEC, USAGE)
    check_mode_keys(args["mode"], argv, args["seeds"])
    trained = load_generator(args["ckpt"], select_device(args["device"]))
    out = args["out"] or Path(DEFAULT_OUT[args["mode"]])
    with torch.no_grad():
        WRITERS[args["mode"]](trained, args, out)


def main() -> None:
    run_reporting_errors(lambda: sample(sys.argv[1:]))


if __name__ == "__main__":
    main()
