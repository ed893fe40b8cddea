"""Figures of a set of simulated traces, and the best-fit baseline every score is compared with."""

from __future__ import annotations

import functools

import numpy as np

from problems.cluster_scheduling.heuristics import best_fit
from problems.cluster_scheduling.simulator import Outcome, simulate
from problems.cluster_scheduling.traces import Trace

__all__ = ["best_fit_outcome", "summarise"]


@functools.lru_cache(maxsize=256)
def best_fit_outcome(trace: Trace, exhausted_quantile: float) -> Outcome:
    """Best fit's outcome on `trace` (cached: traces are built once per config)."""
    return simulate(trace, best_fit, exhausted_quantile)


def summarise(outcomes: list[Outcome], pending_weight: float) -> dict[str, float]:
    """Means over the traces: wasted (stranded + weight x pending), its parts, and how the fleet was used."""
    def mean(values) -> float:
        return float(np.mean(list(values)))

    return {
        "wasted_pct": mean(o.wasted_pct(pending_weight) for o in outcomes),
        "stranded_pct": mean(o.stranded_pct for o in outcomes),
        "stranded_cpu_pct": mean(o.stranded_cpu_pct for o in outcomes),
        "stranded_mem_pct": mean(o.stranded_mem_pct for o in outcomes),
        "pending_pct": mean(o.pending_pct for o in outcomes),
        "waited_per_trace": mean(o.waited for o in outcomes),
        "unplaced": int(sum(o.unplaced for o in outcomes)),
        "allocated_pct": mean(o.allocated_pct for o in outcomes),
        "empty_machines_pct": mean(o.empty_machines_pct for o in outcomes),
    }
