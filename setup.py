"""Packaging shim: ships the top-level ``conf/`` inside the wheel as ``gan_runner.conf``.

The repository keeps Hydra's configs at the top level (one folder per config group), while
an installed ``gan-train`` must find them from any directory; pyproject.toml alone cannot
combine package discovery with this one remapped package.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gan_runner", "gan_runner.*"]), "gan_runner.conf"],
    package_dir={"gan_runner.conf": "conf"},
)
