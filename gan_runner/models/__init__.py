"""Generator/discriminator pairs, registered by config name."""


from gan_runner.core.registry import import_submodules

import_submodules(__name__, __path__)  # every module registers its components
