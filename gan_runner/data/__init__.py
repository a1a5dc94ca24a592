"""Datasets: where real samples come from, fitted to the shape the models expect."""
