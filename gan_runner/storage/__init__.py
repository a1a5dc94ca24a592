"""What a run leaves on disk and reads back: checkpoints, exported generators, the metric log,
sample pictures."""
