"""``gan-sample``: pictures from a trained EMA generator, one fixed latent per seed.

``gan-sample ckpt=outputs/.../checkpoints/ckpt-000100000.pt seeds=0-63 out=grid.png``; ``ckpt=``
also takes a generator file written by ``gan-export`` (``G.safetensors``).
Each seed gives the same latent on any machine: it is drawn on the CPU from that seed.
``mode=mixing`` and ``mode=interp`` draw the style-mixing figure and an interpolation strip
(the latent work lives in ``gan_runner.models.latents``); ``mode=codes`` sweeps one of InfoGAN's
codes. A class-conditional generator draws a grid with one row per class, its name beside the
row (``classes=0-9 per_class=8``; every class by default), or one class (``class=3``), which
also picks the class of a mixing figure or an interpolation strip.
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
from gan_runner.models.base import num_classes
from gan_runner.models.latents import (
    STYLE_RANGES,
    class_rows,
    code_sweep,
    code_values,
    has_mapping,
    images_for_latents,
    interpolation,
    labels_for,
    latents_for_seeds,
    style_layers,
    style_mixing,
)
from gan_runner.storage.generator_file import TrainedGenerator, load_generator
from gan_runner.storage.images import class_grid, image_grid, samples_picture, save_png

USAGE = "usage: gan-sample ckpt=PATH [mode=grid|mixing|interp|codes] [key=value ...]"
MODES = ("grid", "mixing", "interp", "codes")
DEFAULT_SEEDS = {"grid": "0-63", "codes": "0-7"}
DEFAULT_PER_CLASS = 8


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


def positive_float(text: str) -> float:
    if not float(text) > 0:
        raise ValueError("expected a positive number")
    return float(text)


SPEC = {
    "ckpt": Arg(Path, None, "a ckpt-*.pt written by gan-train, or a gan-export .safetensors",
                required=True),
    "mode": Arg(choice(*MODES), "grid", "grid, mixing (style mixing), interp (a strip) or "
                "codes (InfoGAN: one code swept)"),
    "seeds": Arg(parse_seeds, None, "seeds, e.g. 0-63 or 1,5,9 (grid: 0-63, a class grid's "
                 "columns: 0-7; interp: the path's stops; codes: one per row, 0-7)"),
    "classes": Arg(parse_seeds, None, "grid of a conditional model: one row per class, e.g. "
                   "0-9 (default: all)"),
    "per_class": Arg(at_least(1), None, "class grid: images per class, seeds 0..N-1 "
                     f"(default {DEFAULT_PER_CLASS}; or give seeds=)"),
    "class": Arg(at_least(0), None, "conditional model: draw this class only (grid, mixing, "
                 "interp)"),
    "code": Arg(at_least(0), "0", "codes: which code to sweep (categorical ones first)"),
    "span": Arg(positive_float, "2.0", "codes: a continuous code runs from -span to span"),
    "out": Arg(Path, None, "the PNG to write (default: samples.png, mixing.png, interp.png)"),
    "individual": Arg(Path, None, "grid: also write one PNG per seed into this folder"),
    "psi": Arg(float, "1.0", "truncation psi (models with a mapping network)"),
    "cutoff": Arg(at_least(0), None, "truncate only the first N styles (mixing, interp)"),
    "rows": Arg(parse_seeds, None, "mixing: seeds whose styles are kept, one per row"),
    "cols": Arg(parse_seeds, None, "mixing: seeds that lend their styles, one per column"),
    "styles": Arg(parse_styles, "0-3", "mixing: layers taken from the column seed "
                  f"(indices or {', '.join(STYLE_RANGES)})"),
    "steps": Arg(at_least(2), "8", "interp: images from one seed to the next, both included; "
                 "codes: values of a continuous code"),
    "space": Arg(choice("z", "w"), "z", "interp: slerp in z, or lerp in w (mapping network)"),
    "device": Arg(str, "auto", "auto | cpu | cuda"),
}
COMMON_KEYS = {"ckpt", "mode", "out", "psi", "device"}
MODE_KEYS = {"grid": {"seeds", "individual", "classes", "per_class", "class"},
             "mixing": {"rows", "cols", "styles", "cutoff", "class"},
             "interp": {"seeds", "steps", "space", "cutoff", "class"},
             "codes": {"seeds", "code", "steps", "span"}}
REQUIRED_KEYS = {"grid": (), "mixing": ("rows", "cols"), "interp": ("seeds",), "codes": ()}
EXAMPLES = {"mixing": "e.g. mode=mixing rows=0-5 cols=10-14 styles=coarse",
            "interp": "e.g. mode=interp seeds=1,2,3 steps=8 space=w"}
EXCLUSIVE = (("classes", "class"), ("per_class", "class"), ("per_class", "seeds"))


def check_mode_keys(mode: str, given: set[str], seeds: list[int] | None) -> None:
    """A key of another mode would be silently ignored, and the default seed list makes no
    sense as interpolation stops: both are refused before the checkpoint is read, as are
    two keys that say the same thing twice."""
    for key in sorted(given - COMMON_KEYS - MODE_KEYS[mode]):
        owners = " or ".join(f"mode={m}" for m in MODES if key in MODE_KEYS[m])
        raise UserError(f"{key}= does not apply to mode={mode}", f"it is for {owners}")
    missing = [key for key in REQUIRED_KEYS[mode] if key not in given]
    if missing:
        raise UserError(f"mode={mode} needs {' and '.join(k + '=' for k in missing)}",
                        EXAMPLES[mode])
    if mode == "interp" and len(seeds or ()) < 2:
        raise UserError("mode=interp needs at least two seeds", EXAMPLES[mode])
    for first, second in EXCLUSIVE:
        if {first, second} <= given:
            raise UserError(f"give {first}= or {second}=, not both",
                            "per_class=N is short for seeds=0-(N-1) in a class grid")


def describe(trained: TrainedGenerator) -> str:
    conditioning = trained.config.get("conditioning", {}).get("name", "none")
    return f"model={trained.model_name}, conditioning={conditioning}"


def check_classes(trained: TrainedGenerator, key: str, classes: list[int]) -> None:
    """Classes asked of a generator that has none, or beyond its count: one line each."""
    count = num_classes(trained.G)
    if not count:
        raise UserError(f"{key}= draws classes, and this generator is not class-conditional "
                        f"({describe(trained)})", "drop classes=, class= and per_class=")
    beyond = [c for c in classes if c >= count]
    if beyond:
        raise UserError(f"{key} has class {beyond[0]}, and this generator has {count} "
                        f"classes", f"give classes in 0-{count - 1}")


def chosen_class(trained: TrainedGenerator, args: dict[str, Any]) -> int | None:
    """``class=`` where given (checked); a conditional figure of one class needs it."""
    if args["class"] is not None:
        check_classes(trained, "class", [args["class"]])
        return args["class"]
    count = num_classes(trained.G)
    if count:
        raise UserError(f"mode={args['mode']} of a class-conditional generator draws one "
                        "class", f"add class=N (0-{count - 1})")
    return None


def require_mapping(trained: TrainedGenerator, what: str) -> None:
    if not has_mapping(trained.G):
        raise UserError(f"{what} needs a generator with a mapping network (z -> w), and "
                        f"model={trained.model_name} has none", "use a checkpoint trained with "
                        "model=stylegan2, stylegan or stylegan2_tiny")


def grid_classes(trained: TrainedGenerator, args: dict[str, Any]) -> list[int] | None:
    """The rows of a class grid (None: a plain grid): ``classes=``, or every class of a
    conditional generator not given ``class=``."""
    count = num_classes(trained.G)
    if args["classes"] is not None:
        check_classes(trained, "classes", args["classes"])
        return args["classes"]
    if args["per_class"] is not None and not count:
        check_classes(trained, "per_class", [])
    if args["class"] is not None or not count:
        return None
    return list(range(count))


def write_grid(trained: TrainedGenerator, args: dict[str, Any], out: Path) -> None:
    if args["individual"] is not None and not trained.spec.is_image:
        raise UserError("individual= writes one PNG per image, and this checkpoint makes 2-D "
                        "points", "drop individual=: the grid is a scatter plot of them")
    classes = grid_classes(trained, args)
    if classes is not None:
        write_class_grid(trained, args, classes, out)
        return
    G = trained.G
    device = next(G.parameters()).device
    label = chosen_class(trained, args)
    seeds = args["seeds"] or parse_seeds(DEFAULT_SEEDS["grid"])
    z = latents_for_seeds(seeds, G).to(device)
    c = labels_for(label, len(seeds), device)
    images = images_for_latents(G, z, args["psi"], c=c).cpu()  # fixed noise: one image a seed
    save_png(samples_picture(images), out)
    of_class = "" if label is None else f" of class {label} ({trained.spec.class_name(label)})"
    print(f"wrote {out} ({len(images)} samples{of_class})")
    write_individual(args, seeds, [label] * len(seeds), images)


def write_class_grid(trained: TrainedGenerator, args: dict[str, Any], classes: list[int],
                     out: Path) -> None:
    """One row per class, the same seeds in every row: the columns show what the class
    changes about one latent."""
    G = trained.G
    device = next(G.parameters()).device
    seeds = args["seeds"] or list(range(args["per_class"] or DEFAULT_PER_CLASS))
    z, c = class_rows(latents_for_seeds(seeds, G).to(device), classes)
    images = images_for_latents(G, z, args["psi"], c=c).cpu()
    names = [trained.spec.class_name(k) for k in classes]
    if trained.spec.is_image:
        save_png(class_grid(images, names), out)
    else:  # points: one scatter of all classes (their rows would be dots)
        save_png(samples_picture(images), out)
    print(f"wrote {out} ({len(classes)} classes x {len(seeds)} samples: "
          f"{', '.join(names)})")
    write_individual(args, seeds * len(classes), c.tolist(), images)


def write_individual(args: dict[str, Any], seeds: list[int], labels: list[int | None],
                     images: torch.Tensor) -> None:
    if args["individual"] is None:
        return
    for seed, label, image in zip(seeds, labels, images, strict=True):
        name = f"seed{seed:04d}.png" if label is None else f"class{label:03d}-seed{seed:04d}.png"
        save_png(to_uint8(image).permute(1, 2, 0).numpy(), args["individual"] / name)
    print(f"wrote {len(images)} images to {args['individual']}")


def write_mixing(trained: TrainedGenerator, args: dict[str, Any], out: Path) -> None:
    require_mapping(trained, "mode=mixing")
    G = trained.G
    layers = style_layers(args["styles"], G.mapping.num_ws)
    figure = style_mixing(G, args["rows"], args["cols"], layers, args["psi"], args["cutoff"],
                          chosen_class(trained, args))
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
                          args["cutoff"], chosen_class(trained, args))
    save_png(image_grid(strip, nrow=len(strip)), out)
    print(f"wrote {out} ({len(strip)} images, {args['space']}-space path through seeds "
          f"{','.join(map(str, args['seeds']))})")


def write_codes(trained: TrainedGenerator, args: dict[str, Any], out: Path) -> None:
    codes = getattr(trained.G, "codes", None)
    if codes is None:
        raise UserError(f"mode=codes sweeps InfoGAN's latent codes, and this generator has "
                        f"none ({describe(trained)})", "use a checkpoint trained with "
                        "conditioning=infogan")
    if args["code"] >= codes.count:
        raise UserError(f"code={args['code']} is not one of this generator's {codes.count} "
                        "codes", f"give code=0-{codes.count - 1} ({len(codes.categorical)} "
                        f"categorical, then {codes.continuous} continuous)")
    if not trained.spec.is_image:
        raise UserError("mode=codes draws rows of images, and this checkpoint makes 2-D "
                        "points", "use mode=grid")
    seeds = args["seeds"] or parse_seeds(DEFAULT_SEEDS["codes"])
    images = code_sweep(trained.G, seeds, args["code"], args["steps"], args["span"]).cpu()
    save_png(class_grid(images, [f"seed {s}" for s in seeds]), out)
    values = code_values(codes, args["code"], args["steps"], args["span"])
    kind = "categorical" if args["code"] < len(codes.categorical) else "continuous"
    print(f"wrote {out} ({len(seeds)} seeds x {len(values)} values of {kind} code "
          f"{args['code']}: {', '.join(f'{v:g}' for v in values.tolist())})")


WRITERS = {"grid": write_grid, "mixing": write_mixing, "interp": write_interp,
           "codes": write_codes}
DEFAULT_OUT = {"grid": "samples.png", "mixing": "mixing.png", "interp": "interp.png",
               "codes": "codes.png"}


def sample(argv: list[str]) -> None:
    args = parse_args(argv, SPEC, USAGE)
    check_mode_keys(args["mode"], {item.partition("=")[0] for item in argv}, args["seeds"])
    trained = load_generator(args["ckpt"], select_device(args["device"]))
    out = args["out"] or Path(DEFAULT_OUT[args["mode"]])
    with torch.no_grad():
        WRITERS[args["mode"]](trained, args, out)


def main() -> None:
    run_reporting_errors(lambda: sample(sys.argv[1:]))


if __name__ == "__main__":
    main()
