"""The reference table of `evolve check`: the classic online rules and first fit decreasing, same instances."""

from __future__ import annotations

import time

from problems.bin_packing.heuristics import ONLINE_RULES, first_fit_decreasing
from problems.bin_packing.instances import Instance
from problems.bin_packing.packing import online_pack
from problems.bin_packing.scoring import best_fit_bins, summarise

__all__ = ["reference_rows"]


def reference_rows(instances: list[Instance]) -> list[dict]:
    """One row per method: mean excess over L1 (and by group), pooled excess, bins, gain over best fit."""
    baseline = summarise(instances, [best_fit_bins(inst) for inst in instances])
    methods = {name: (lambda inst, rule=rule: online_pack(inst.items, inst.capacity, rule))
               for name, rule in ONLINE_RULES.items()}
    methods["first fit decreasing (offline)"] = lambda inst: first_fit_decreasing(inst.items, inst.capacity)
    rows = []
    for name, pack in methods.items():
        started = time.perf_counter()
        bins = [pack(inst).bins for inst in instances]
        ms = 1000 * (time.perf_counter() - started) / len(instances)
        s = summarise(instances, bins)
        rows.append({"method": name, "excess %": s.excess_pct,
                     **{f"{group} %": value for group, value in s.by_group.items()},
                     "pooled %": s.pooled_excess_pct, "bins": s.bins,
                     "vs best fit (points)": baseline.excess_pct - s.excess_pct, "ms/instance": ms})
    rows.append({"method": "L1 lower bound", "excess %": 0.0, **{f"{g} %": 0.0 for g in baseline.by_group},
                 "pooled %": 0.0, "bins": baseline.l1, "vs best fit (points)": baseline.excess_pct,
                 "ms/instance": None})
    return rows
