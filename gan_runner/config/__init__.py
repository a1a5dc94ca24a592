"""Structured configs: the dataclass schemas that validate every option, and their registration."""
