"""Generator/discriminator pairs, registered by config name."""
