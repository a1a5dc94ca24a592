"""``gan-train --help`` is written for gan-train: every group with its options and one line each
(this run's choices marked), the most used overrides, where outputs go, how to resume, and
Hydra's shell completion, which completes groups and options."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from importlib.resources import files

import pytest

from gan_runner.cli.train import main
from gan_runner.config.compose import compose_config, validated

CONF = files("gan_runner.conf")
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra",)
                and not p.name.startswith("__"))


def gan_train(*args: str, env: dict[str, str] | None = None) -> str:
    """What ``gan-train ARGS`` prints, run in this process (``--help`` exits 0 after it)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(sys, "argv", ["gan-train", *args])
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        try:
            main()
        except SystemExit as done:
            assert done.code in (0, None)
    return out.getvalue()


@pytest.fixture(scope="module")
def help_text() -> str:
    return gan_train("--help")


def section(text: str, title: str) -> list[str]:
    """The lines of the ``== title ==`` section, up to the next one."""
    body = text.split(f"== {title} ==", 1)[1]
    return body.split("\n== ", 1)[0].splitlines()[1:]


def test_the_help_is_gan_trains_own_not_hydras_stock_page(help_text):
    assert help_text.startswith("gan-train: train a GAN")
    assert "Powered by Hydra" not in help_text and "$APP_CONFIG_GROUPS" not in help_text
    for title in ("Config groups", "Most used overrides", "Outputs", "Resume",
                  "Shell completion (Hydra's)"):
        assert f"== {title} ==" in help_text


def test_every_group_is_listed_with_every_option_and_a_line_for_each(help_text):
    lines = section(help_text, "Config groups")
    for group in GROUPS:
        [header] = [line for line in lines if line.split(" ", 1)[0] == f"{group}:"]
        assert len(header.split()) > 2, f"{group} has no description"
        for option in (p.name[:-5] for p in CONF.joinpath(group).iterdir()
                       if p.name.endswith(".yaml")):
            [line] = [line for line in lines if re.match(rf"  [ *]{option} ", line)
                      and lines.index(line) > lines.index(header)][:1]
            assert len(line[20:].strip()) > 10, f"{group}={option} has no line"
            assert len(line) <= 100


def test_the_choices_of_this_run_are_marked():
    text = gan_train("experiment=toy_ring8", "logger=[csv,wandb]", "--help")
    marked = {line.split()[0][1:] for line in section(text, "Config groups")
              if line.startswith("  *")}
    assert {"mlp", "toy_ring8", "csv", "wandb", "ns", "none"} <= marked
    assert not {"dcgan", "fashion_mnist", "tensorboard"} & marked


def test_every_suggested_override_is_a_valid_setting(help_text):
    overrides = [line.split()[0] for line in section(help_text, "Most used overrides")
                 if line.strip()]
    assert len(overrides) >= 10
    for override in overrides:
        if not override.startswith("hydra."):  # Hydra's own keys are not the run's config
            validated(compose_config([override]))


def test_the_outputs_and_resume_sections_name_the_files_and_the_option(help_text):
    outputs = "\n".join(section(help_text, "Outputs"))
    for name in ("metrics.jsonl", "checkpoints/", "samples/", "provenance.jsonl",
                 "report.html"):
        assert name in outputs
    assert "trainer.resume=auto" in "\n".join(section(help_text, "Resume"))


def test_the_documented_completion_completes_groups_and_options(help_text):
    assert 'eval "$(gan-train -sc install=bash)"' in help_text
    line = "gan-train logger="
    completions = gan_train("-sc", "query=bash",
                            env={"COMP_LINE": line, "COMP_POINT": str(len(line))}).split()
    assert {"logger=tensorboard", "logger=wandb", "logger=mlflow", "logger=csv"} <= set(
        completions)
