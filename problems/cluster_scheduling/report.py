"""The reference table of `evolve check`: first fit, best fit, worst fit, Tetris's dot product, AlphaEvolve's score."""

from __future__ import annotations

import time

from problems.cluster_scheduling.heuristics import RULES
from problems.cluster_scheduling.scoring import best_fit_outcome, summarise
from problems.cluster_scheduling.simulator import simulate
from problems.cluster_scheduling.traces import Trace

__all__ = ["reference_rows"]


def reference_rows(traces: list[Trace], exhausted_quantile: float, pending_weight: float) -> list[dict]:
    """One row per rule: wasted % (the negated fitness), stranded and pending %, how the fleet was used."""
    baseline = summarise([best_fit_outcome(t, exhausted_quantile) for t in traces], pending_weight)
    rows = []
    for name, rule in RULES.items():
        started = time.perf_counter()
        s = summarise([simulate(t, rule, exhausted_quantile) for t in traces], pending_weight)
        rows.append({"method": name, "wasted %": s["wasted_pct"], "stranded %": s["stranded_pct"],
                     "stranded CPU %": s["stranded_cpu_pct"], "stranded mem %": s["stranded_mem_pct"],
                     "pending %": s["pending_pct"], "waited/trace": s["waited_per_trace"],
                     "allocated %": s["allocated_pct"], "empty machines %": s["empty_machines_pct"],
                     "vs best fit (points)": baseline["wasted_pct"] - s["wasted_pct"],
                     "ms/trace": 1000 * (time.perf_counter() - started) / len(traces)})
    return rows
