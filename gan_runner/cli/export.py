"""``gan-export``: a run checkpoint's EMA generator as a safetensors file to share.

``gan-export ckpt=outputs/.../checkpoints/ckpt-000100000.pt out=G.safetensors``
The file holds the generator's weights and, as metadata, what rebuilds and describes it
(``gan_runner.storage.generator_file``); ``gan-sample`` and ``gan-eval`` read it in ``ckpt=``. It is
a fraction of the checkpoint's size: no D, no optimizer state, no random state. A conditional
generator's file names its classes, which ``gan-sample`` writes beside the rows of its grids.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gan_runner.cli.args import Arg, parse_args
from gan_runner.cli.errors import run_reporting_errors
from gan_runner.core.errors import UserError
from gan_runner.storage.generator_file import export_generator
from gan_runner.storage.run_checkpoint import RunCheckpoint

USAGE = "usage: gan-export ckpt=PATH out=G.safetensors"
SPEC = {
    "ckpt": Arg(Path, None, "a ckpt-*.pt written by gan-train", required=True),
    "out": Arg(Path, None, "the .safetensors file to write", required=True),
}


def export(argv: list[str]) -> Path:
    args = parse_args(argv, SPEC, USAGE)
    if args["out"].suffix != ".safetensors":
        raise UserError(f"out={args['out']} should end in .safetensors",
                        "e.g. out=G.safetensors")
    checkpoint = RunCheckpoint.load(args["ckpt"])
    params = export_generator(checkpoint, args["ckpt"], args["out"])
    section = checkpoint.config.get("conditioning", {})
    conditioning = section.get("name", "none")
    classes = (f", {checkpoint.spec.num_classes} classes" if section.get("d", "none") != "none"
               else "")
    print(f"wrote {args['out']} (EMA generator of model={checkpoint.config['model']['name']}, "
          f"conditioning={conditioning}{classes}, {params:,} parameters, "
          f"{checkpoint.kimg:g} kimg)")
    return args["out"]


def main() -> None:
    run_reporting_errors(lambda: export(sys.argv[1:]))


if __name__ == "__main__":
    main()
