"""gan_runner: a config-driven runner for GAN experiments.

Importing the package fills every registry (datasets, models, losses, regularizers,
augmentations, feature extractors, metrics): each component package imports all of its
modules, and each module registers what it defines. Adding a component is adding a module.
"""

__version__ = "0.1.0"

from gan_runner import augment, data, metrics, models, objectives  # noqa: F401
