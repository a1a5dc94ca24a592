"""Adversarial losses and regularizers: pure functions of tensors, registered by config name."""
