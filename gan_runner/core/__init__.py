"""The bottom layer: errors, paths, the registry, random state, safe loading, devices, the data
spec and config checks. It imports nothing else of gan_runner."""
