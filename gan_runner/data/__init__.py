"""Datasets: where real samples come from, fitted to the shape the models expect."""


from gan_runner.core.registry import import_submodules

import_submodules(__name__, __path__)  # every module registers its components
