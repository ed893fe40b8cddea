"""Figures of a set of packings: excess bins over the L1 bound, per instance, per group and overall."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from problems.bin_packing.heuristics import best_fit
from problems.bin_packing.instances import Instance
from problems.bin_packing.packing import online_pack

__all__ = ["Summary", "best_fit_bins", "excess_pct", "summarise"]


def excess_pct(instance: Instance, bins: int) -> float:
    """100 * (bins - L1) / L1."""
    return 100.0 * (bins - instance.l1_bound) / instance.l1_bound


@functools.lru_cache(maxsize=4096)
def best_fit_bins(instance: Instance) -> int:
    """Bins best fit uses on `instance` (the baseline every score is compared with)."""
    return online_pack(instance.items, instance.capacity, best_fit).bins


@dataclass(frozen=True)
class Summary:
    """Excess over the L1 bound (mean over instances, and by group) and the pooled figures."""

    excess_pct: float
    by_group: dict[str, float]
    per_instance: list[float]
    bins: int
    l1: int

    @property
    def pooled_excess_pct(self) -> float:
        """100 * (total bins - total L1) / total L1: FunSearch's figure (a ratio of means)."""
        return 100.0 * (self.bins - self.l1) / self.l1


def summarise(instances: list[Instance], bins: list[int]) -> Summary:
    """Summarise the bins used on each of `instances`."""
    per = [excess_pct(inst, b) for inst, b in zip(instances, bins)]
    groups: dict[str, list[float]] = {}
    for inst, value in zip(instances, per):
        groups.setdefault(inst.group, []).append(value)
    return Summary(float(np.mean(per)), {g: float(np.mean(v)) for g, v in groups.items()}, per,
                   int(sum(bins)), int(sum(inst.l1_bound for inst in instances)))

