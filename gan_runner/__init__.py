"""gan_runner: a config-driven runner for GAN experiments."""

__version__ = "0.1.0"
