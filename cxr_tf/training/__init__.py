"""Training: distribution strategies, metrics and callbacks of a run."""
