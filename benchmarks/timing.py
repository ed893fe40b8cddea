"""The timing helper every benchmark shares (run the benchmarks as scripts: this folder is on sys.path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["median_ms"]


def median_ms(fn: Callable[[], object], repeats: int, warm_up: bool = False) -> float:
    """Median wall milliseconds of `fn()` over `repeats` runs, after one untimed call if `warm_up`."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
