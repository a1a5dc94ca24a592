"""The bottom layer: errors, paths, the registry, random state, safe loading, devices, the data
spec, config checks and the whole-pixel image ops that augmentations and regularizers share.
It imports nothing else of gan_runner."""
