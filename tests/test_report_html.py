"""``report.html``: one self-contained page (the sortable table, the charts, the last sample
grids, each run's command and provenance), checked in headless Chromium: every run has a row,
every picture loads with the page alone in a folder and no network, and the table sorts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from test_report import fake_run

from gan_runner.presentation.report.make import make_report

WINDOW = "1320,2400"


def find_or_install_chromium() -> str:
    """Debian's ``chromium``, installed here when missing (``make chromium`` does the same)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and this user cannot apt-get install it "
                    "(run `make chromium` as root, or install Debian's chromium package)")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode:
            pytest.skip(f"could not install chromium: {done.stderr.strip()[-300:]}")
    return shutil.which("chromium") or pytest.skip("apt-get installed no chromium binary")


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_or_install_chromium()


def headless(chromium: str, *args: str) -> subprocess.CompletedProcess:
    """Chromium with no network at all: a page that needed one would show broken pictures."""
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--no-first-run", "--disable-extensions",
         f"--window-size={WINDOW}", "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120, check=False)


class Dom(HTMLParser):
    """The rows (their run and cells) and the pictures (their decoded width) of a dumped page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []
        self.images: list[dict[str, str | None]] = []
        self.heads: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "tr" and "data-run" in attrs:
            self.rows.append({"run": attrs["data-run"], "cells": []})
        elif tag == "td" and self.rows and "data-value" in attrs and self._in != "kv":
            self.rows[-1]["cells"].append(attrs["data-value"])
        elif tag == "th":
            self._in = "th"
        elif tag == "table" and attrs.get("class") == "kv":
            self._in = "kv"

    def handle_endtag(self, tag):
        if tag in ("th", "table"):
            self._in = None

    def handle_data(self, data):
        if self._in == "th":
            self.heads.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A sweep of three runs (one unfinished) with provenance, reported; the page then moved
    alone to another folder."""
    root = tmp_path_factory.mktemp("html") / "sweep"
    common = {"experiment": "toy_ring8", "trainer.kimg": "4"}
    fake_run(root / "0", {**common, "loss": "ns"}, grid_colour=(220, 40, 40),
             evals=[{"fid": 50.0}, {"fid": 30.0}])
    fake_run(root / "1", {**common, "loss": "hinge"}, grid_colour=(40, 160, 40),
             evals=[{"fid": 20.0}, {"fid": 25.0}])
    fake_run(root / "2", {**common, "loss": "lsgan"}, grid_colour=(40, 40, 220),
             evals=[{"fid": 40.0}], finished=False)
    (root / "0" / "provenance.jsonl").write_text(json.dumps({
        "command": "gan-train -m loss=ns,hinge,lsgan", "started": "2026-12-01T10:00:00+00:00",
        "gan_runner": "0.1.0", "torch": "2.14.1", "host": "node7", "device": "cpu"}) + "\n")
    make_report(root)
    alone = root.parent / "mailed" / "report.html"
    alone.parent.mkdir()
    shutil.move(root / "report" / "report.html", alone)
    return alone


def test_the_page_needs_no_other_file_and_no_network(report):
    text = report.read_text()
    assert not re.search(r'(src|href)="(?!data:|#)', text)  # nothing outside the page
    assert "<link" not in text and "@import" not in text


def test_every_run_has_a_row_and_every_picture_loads_in_chromium(report, chromium):
    done = headless(chromium, "--dump-dom", report.as_uri())
    assert done.returncode == 0, done.stderr[-1000:]
    dom = Dom()
    dom.feed(done.stdout)
    assert [row["run"] for row in dom.rows] == ["0", "1", "2"]
    alts = [image.get("alt") for image in dom.images]
    assert {"metrics", "losses"} <= set(alts)
    assert {f"samples of {run}" for run in ("0", "1", "2")} <= set(alts)
    assert all(int(image.get("data-width") or 0) > 0 for image in dom.images), [
        (image.get("alt"), image.get("data-width")) for image in dom.images]


def test_a_sort_in_the_address_sorts_the_table(report, chromium):
    dom = Dom()
    dom.feed(headless(chromium, "--dump-dom", report.as_uri()).stdout)
    column = dom.heads.index("FID best")
    for order, expected in (("asc", ["1", "0", "2"]), ("desc", ["2", "0", "1"])):
        dom = Dom()
        dom.feed(headless(chromium, "--dump-dom", f"{report.as_uri()}#sort={column}:{order}"
                          ).stdout)
        assert [row["run"] for row in dom.rows] == expected


def test_each_run_shows_its_command_and_provenance(report):
    text = report.read_text()
    assert "gan-train experiment=toy_ring8 trainer.kimg=4 loss=ns" in text
    assert "node7" in text and "gan-train -m loss=ns,hinge,lsgan" in text
    assert "metrics: features" in text  # how the numbers were made
    assert text.count('class="run"') == 3


def test_a_screenshot_shows_the_page(report, chromium, tmp_path):
    shot = tmp_path / "report.png"
    done = headless(chromium, f"--screenshot={shot}", report.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-1000:]
    picture = Image.open(shot).convert("RGB")
    assert picture.size == tuple(int(n) for n in WINDOW.split(","))
    colours = {rgb for _, rgb in picture.getcolors(1 << 20)}
    for grid in ((220, 40, 40), (40, 160, 40), (40, 40, 220)):  # each run's last grid shows
        assert grid in colours
    keep = os.environ.get("GAN_RUNNER_KEEP_SCREENSHOT")
    if keep:  # to look at it
        shutil.copy(shot, keep)
