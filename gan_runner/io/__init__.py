"""What a run leaves on disk: checkpoints, sample grids, metric logs."""
