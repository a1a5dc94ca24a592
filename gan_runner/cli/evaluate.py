"""``gan-eval``: metrics for a checkpoint, or for two folders of images.

``gan-eval ckpt=PATH [metrics=fid,kid] [num_fakes=10000] [psi=0.7]``: the EMA generator of a
checkpoint (or of a ``gan-export`` safetensors file) against the real data it was trained on
(its ``real_split``).
``gan-eval real=DIR fake=DIR [features=inception]``: two folders, no generator involved.
``protocol=fid50k_full[,kid50k_full...]`` evaluates as a published protocol defines (its
metrics, counts and features); ``real_stats=FILE.npz`` takes the real side of FID from
pytorch-fid / clean-fid statistics; ``save_stats=FILE.npz`` writes ours in that format.
Prints a table; ``out=FILE.json`` also writes the numbers with their provenance.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from gan_runner.cli.args import Arg, parse_args
from gan_runner.cli.errors import run_reporting_errors
from gan_runner.core.devices import select_device
from gan_runner.core.errors import UserError
from gan_runner.data.images import IMAGE_SUFFIXES, ImageDatasetConfig, image_folder_set
from gan_runner.metrics.base import MetricsConfig, registered
from gan_runner.metrics.evaluate import Evaluator
from gan_runner.metrics.protocols import PROTOCOLS
from gan_runner.storage.generator_file import load_generator

USAGE = ("usage: gan-eval ckpt=PATH [metrics=fid,kid | protocol=fid50k_full] [num_fakes=N] "
         "[psi=1.0]\n"
         "       gan-eval real=DIR fake=DIR [metrics=fid,kid] [features=inception]")
# what gan-eval evaluates when neither metrics= nor protocol= says
DEFAULT_METRICS, DEFAULT_FAKES = ["fid", "kid"], 10_000
SPEC = {
    "ckpt": Arg(Path, None, "a ckpt-*.pt written by gan-train, or a gan-export .safetensors"),
    "real": Arg(Path, None, "a folder of real images (with fake=)"),
    "fake": Arg(Path, None, "a folder of generated images (with real=)"),
    "metrics": Arg(lambda s: [m for m in s.split(",") if m], None,
                   "comma-separated (default fid,kid): "
                   + " ".join(metric.name for metric in registered())),
    "protocol": Arg(str, None, "comma-separated: " + " ".join(PROTOCOLS.names())),
    "num_fakes": Arg(int, None, "generated samples (ckpt mode; default 10000)"),
    "num_reals": Arg(int, None, "real samples (default: the whole split or folder)"),
    "psi": Arg(float, "1.0", "truncation psi (ckpt mode, models with a mapping network)"),
    "features": Arg(str, "auto", "auto | inception | fmnist | toy | vgg16 | dinov2"),
    "resize": Arg(str, "tf_bilinear", "inception resize: tf_bilinear | clean | torch_bilinear"),
    "inception_weights": Arg(str, None, "path to the FID Inception weights"),
    "weights": Arg(lambda s: dict(item.split(":", 1) for item in s.split(",") if item), None,
                   "other networks' files: vgg16:PATH,dinov2:PATH,alexnet:PATH,lpips_vgg:PATH"),
    "real_split": Arg(str, "train", "ckpt mode: the split of the training dataset to compare to"),
    "batch_size": Arg(int, "250", "extractor batch size"),
    "real_stats": Arg(str, None, "FID's real side from a mu/sigma .npz (pytorch-fid, clean-fid)"),
    "save_stats": Arg(Path, None, "write the real features' mu/sigma .npz here"),
    "device": Arg(str, "auto", "auto | cpu | cuda"),
    "out": Arg(Path, None, "also write the results as JSON here"),
}


def folder_data(root: Path, channels: int = 3):
    """A folder as metric input: its images at their own (first image's) size, so the
    extractor sees them unresampled, as the reference tools do."""
    first = next((p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES),
                 None) if root.is_dir() else None
    if first is None:
        raise UserError(f"no images under {root}", "pass a folder of PNG/JPEG images")
    with Image.open(first) as image:
        side = max(image.size)
    cfg = ImageDatasetConfig(name="image_folder", root=str(root), resolution=side,
                             channels=channels, fit="pad")
    return image_folder_set(cfg)


def metrics_config(args: dict[str, Any]) -> MetricsConfig:
    """A protocol fixes the metrics and the count; without one, gan-eval's defaults apply."""
    fields = ("features", "num_reals", "resize", "inception_weights", "real_split",
              "batch_size", "psi", "real_stats", "weights")
    given = {k: args[k] for k in fields if args[k] is not None}
    protocol = args["protocol"] or ""
    names = args["metrics"] or ([] if protocol else DEFAULT_METRICS)
    num_fakes = args["num_fakes"] or (MetricsConfig.num_fakes if protocol else DEFAULT_FAKES)
    return MetricsConfig(names=names, protocol=protocol, num_fakes=num_fakes, **given)


def evaluate(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv, SPEC, USAGE)
    folders = args["real"] is not None or args["fake"] is not None
    if folders == (args["ckpt"] is not None) or (folders and None in (args["real"], args["fake"])):
        raise UserError("give either ckpt=PATH or both real=DIR and fake=DIR", USAGE)
    device = select_device(args["device"])
    cfg = metrics_config(args)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with progress:
        task = progress.add_task("features", total=None)

        def advance(n: int) -> None:
            progress.advance(task, n)

        if folders:
            evaluator = Evaluator(cfg, folder_data(args["real"]), "image_folder", device)
            fakes = folder_data(args["fake"])
            progress.update(task, total=evaluator.work(len(fakes)) )
            results = evaluator.compare(fakes, advance)
            source = {"real": str(args["real"]), "fake": str(args["fake"])}
        else:
            trained = load_generator(args["ckpt"], device)
            evaluator = Evaluator.for_dataset(cfg, trained.dataset_config(), device)
            progress.update(task, total=evaluator.work())
            results = evaluator(trained.G, advance=advance)
            source = {"ckpt": str(args["ckpt"]), "ckpt_kind": trained.source["kind"],
                      "kimg": trained.kimg}
    results = {**source, **results}
    if args["save_stats"] is not None:
        evaluator.real_stats().save(args["save_stats"])
        results["saved_stats"] = str(args["save_stats"])
    show(results)
    if args["out"] is not None:  # a spread that means nothing (NaN) is null, as in metrics.jsonl
        plain = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                 for k, v in results.items()}
        args["out"].write_text(json.dumps(plain, indent=2))
    return results


def show(results: dict[str, Any]) -> None:
    table = Table(title="gan-eval")
    table.add_column("key")
    table.add_column("value", justify="right")
    for key, value in results.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    Console().print(table)


def main() -> None:
    run_reporting_errors(lambda: evaluate(sys.argv[1:]))


if __name__ == "__main__":
    main()
