"""Defaults live in one place, the dataclass: an option's YAML states only what differs.

A YAML key that repeats what the run would get anyway is a second copy of a default, and the
two drift apart (``trainer/default.yaml`` once said ``snapshot_every_kimg: 20`` while the
schema said 10). The test deletes each key of each option file in turn, composes the run that
selects the option, and fails if the resolved config is the same without the key.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from gan_runner.config.compose import as_dict
from gan_runner.config.store import register_configs

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("dataset", "model", "regularizer", "augment", "optimizer", "trainer", "loss",
          "metrics", "experiment", "conditioning", "logger")
SKIP = {"defaults", "name"}  # the option's composition and identity, not values
NEEDS = {"dataset=image_folder": ["dataset.root=/data"]}


def resolved(conf: Path, overrides: list[str]) -> dict:
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(conf), version_base=None):
        return as_dict(compose("train", overrides=overrides))


def leaves(node: DictConfig, prefix: str = "") -> Iterator[str]:
    for key in node:
        if not prefix and key in SKIP:
            continue
        value = node._get_node(key)
        if isinstance(value, DictConfig) and len(value):
            yield from leaves(value, f"{prefix}{key}.")
        elif not OmegaConf.is_interpolation(node, key):  # a link to another value, not a copy
            yield f"{prefix}{key}"


def delete(node: DictConfig, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    del node[last]


def option_files() -> list[tuple[str, Path]]:
    return [(group, path) for group in GROUPS for path in sorted((CONF / group).glob("*.yaml"))]


@pytest.mark.parametrize("group,path", option_files(),
                         ids=[f"{g}={p.stem}" for g, p in option_files()])
def test_no_option_file_repeats_a_value_the_run_gets_anyway(group, path, tmp_path):
    overrides = [f"{group}={path.stem}", *NEEDS.get(f"{group}={path.stem}", [])]
    conf = shutil.copytree(CONF, tmp_path / "conf")
    expected = resolved(conf, overrides)
    original = OmegaConf.load(path)
    repeats = []
    for key in leaves(original):
        node = OmegaConf.load(path)
        delete(node, key)
        (conf / group / path.name).write_text(header(path) + OmegaConf.to_yaml(node))
        if resolved(conf, overrides) == expected:
            repeats.append(key)
    (conf / group / path.name).write_text(path.read_text())
    assert not repeats, f"{path.relative_to(CONF)} repeats the defaults of {repeats}"


def header(path: Path) -> str:
    """The ``# @package`` line, which Hydra reads from the file's comment header."""
    return "".join(line for line in path.read_text().splitlines(keepends=True)
                   if line.startswith("# @package"))


@pytest.mark.parametrize("group", [g for g in GROUPS if (CONF / g / "default.yaml").exists()])
def test_a_groups_default_option_is_its_dataclass(group):
    """Its values are the schema's defaults, written nowhere else."""
    node = OmegaConf.load(CONF / group / "default.yaml")
    assert [key for key in node if key not in SKIP] == []
