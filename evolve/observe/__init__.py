"""Watching a campaign: the progress line, logs, metrics, the Ray dashboard's job, `evolve status`."""
