"""What D sees: augmentations applied to real and fake images alike (ADA, DiffAugment)."""


from gan_runner.core.registry import import_submodules

import_submodules(__name__, __path__)  # every module registers its components
