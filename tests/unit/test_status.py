"""`evolve status` figures that need no campaign."""

from __future__ import annotations

from datetime import datetime, timedelta

from evolve.cli import active_seconds


def test_evaluation_rate_leaves_out_the_idle_time_between_resumes():
    start = datetime(2026, 1, 1, 12)
    first = [start + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    resumed = [start + timedelta(hours=5, seconds=s) for s in (0, 5, 10)]  # resumed five hours later
    assert active_seconds(resumed + first) == 40.0
    assert active_seconds(first, idle_after=5) == 0.0
    assert active_seconds(first[:1]) == 0.0 and active_seconds([]) == 0.0
