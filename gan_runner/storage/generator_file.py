"""A trained generator to share: its EMA weights in a safetensors file, with what rebuilds it.

``gan-export`` writes one from a run checkpoint. safetensors is a header of JSON and raw
tensor bytes, so opening one cannot run code, whoever wrote it; its string metadata carries
the training config (model and dataset sections included), the data shape, the kimg, the
config choices, the code versions and the checkpoint it came from. ``gan-sample`` and
``gan-eval`` take either kind of file through ``load_generator``.

Metadata format 2 adds ``classes``, the data's labels (count, names, per-class counts), which a
conditional generator is built for; format 1 files have none (unlabelled data, or from before
labels) and still load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from gan_runner import __version__
from gan_runner.core.errors import UserError
from gan_runner.core.paths import atomic_write
from gan_runner.core.safe_load import first_line
from gan_runner.core.spec import DataSpec
from gan_runner.data.datasets import DATASETS
from gan_runner.storage.checkpoint import PREFIX, what_it_is
from gan_runner.storage.run_checkpoint import (
    RunCheckpoint,
    build_networks,
    built_from,
    component_config,
    load_weights,
    read_spec,
)

KIND = "gan_runner.generator"
FORMAT = 2  # of the metadata below (2: with "classes")
METADATA_KEYS = ("kind", "format", "config", "spec", "kimg", "choices", "trained_with",
                 "exported_with", "source")
HINT = "pass a ckpt-*.pt written by gan-train or a .safetensors written by gan-export"


def export_generator(checkpoint: RunCheckpoint, checkpoint_file: Path, out: Path) -> int:
    """Write the EMA generator of ``checkpoint`` to ``out``; returns its parameter count."""
    G = checkpoint.generator()  # the weights must rebuild the model before anyone gets them
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in G.state_dict().items()}
    metadata = {
        "kind": KIND, "format": str(FORMAT), "config": json.dumps(checkpoint.config),
        "spec": json.dumps(list(checkpoint.spec.shape)),
        "classes": json.dumps(checkpoint.spec.label_facts()), "kimg": repr(checkpoint.kimg),
        "choices": json.dumps(checkpoint.choices), "trained_with": checkpoint.version,
        "exported_with": __version__,
        "source": json.dumps({"checkpoint": checkpoint_file.name,
                              "sha256": hashlib.sha256(checkpoint_file.read_bytes()).hexdigest()}),
    }
    try:
        atomic_write(out, save_tensors(weights, metadata))
    except OSError as error:
        raise UserError(f"could not write {out}: {error.strerror}",
                        "check the folder and the free space") from error
    return sum(p.numel() for p in G.parameters())


@dataclass(frozen=True)
class TrainedGenerator:
    """A generator ready to sample, and what is known of how it was trained."""

    G: nn.Module
    config: dict[str, Any]  # the resolved training config
    spec: DataSpec
    kimg: float
    source: dict[str, Any]  # provenance: the file, its kind and the code versions

    @property
    def model_name(self) -> str:
        return self.config["model"]["name"]

    def dataset_config(self) -> Any:
        """The dataset it was trained on, as its schema's dataclass (for evaluation)."""
        with built_from(self.source["file"], "a dataset"):
            return component_config(DATASETS, self.config["dataset"])


def _read_exported(path: Path, device: torch.device) -> TrainedGenerator:
    where = str(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_tensors(path.read_bytes())
    except Exception as error:  # the library raises its own error type and OSError
        raise UserError(f"{where} is not a readable safetensors file: {first_line(error)}",
                        HINT) from None
    if metadata.get("kind") != KIND:
        raise UserError(f"{where} is a safetensors file that gan-export did not write "
                        "(it has no gan_runner metadata)", HINT)
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise UserError(f"{where} lacks the metadata {', '.join(missing)}", HINT)
    if not metadata["format"].isdigit() or int(metadata["format"]) > FORMAT:
        raise UserError(f"{where} has generator format {metadata['format']}, and this "
                        f"gan_runner reads up to {FORMAT}", "upgrade gan_runner to read it")
    if int(metadata["format"]) >= 2 and "classes" not in metadata:
        raise UserError(f"{where} lacks the metadata classes", HINT)
    try:
        config, shape = json.loads(metadata["config"]), json.loads(metadata["spec"])
        kimg, choices = float(metadata["kimg"]), json.loads(metadata["choices"])
        spec = read_spec(shape, json.loads(metadata.get("classes", "null")))
        if spec is None:
            raise ValueError(f"the data spec {metadata['spec']} with classes "
                             f"{metadata.get('classes')} is not one")
        model_name = config["model"]["name"]
    except (ValueError, TypeError, KeyError) as error:
        raise UserError(f"{where} has damaged metadata: {first_line(error)}", HINT) from None
    if not isinstance(model_name, str) or not isinstance(config.get("dataset"), dict):
        raise UserError(f"{where} has damaged metadata (no model and dataset)", HINT)
    G = load_weights(build_networks(config, spec, where).G, tensors, "generator", where)
    source = {"file": where, "kind": "safetensors", "trained_with": metadata["trained_with"],
              "exported_with": metadata["exported_with"], "choices": choices,
              "from": json.loads(metadata["source"])}
    return TrainedGenerator(G.to(device).eval().requires_grad_(False), config, spec, kimg,
                            source)


def load_generator(path: Path, device: torch.device) -> TrainedGenerator:
    """The EMA generator in a run checkpoint or in a gan-export safetensors file, whichever
    ``path`` is (told by its content, not its name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as error:
        raise UserError(f"cannot read checkpoint {path}: {error.strerror}",
                        "check the path") from error
    if not (head.startswith(PREFIX) or PREFIX.startswith(head)):  # not even a cut checkpoint
        if what_it_is(head).startswith("a safetensors"):
            return _read_exported(path, device)
        raise UserError(f"{path} is {what_it_is(head)}", HINT)
    checkpoint = RunCheckpoint.load(path, device)
    source = {"file": str(path), "kind": "checkpoint", "trained_with": checkpoint.version,
              "format": checkpoint.format, "choices": checkpoint.choices}
    return TrainedGenerator(checkpoint.generator(device), checkpoint.config, checkpoint.spec,
                            checkpoint.kimg, source)
