"""Behavioural descriptors of a route for the MAP-Elites grid: how it walks, not how long it is."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from scipy.stats import spearmanr

from problems.warehouse_tsp.instances import Tour

__all__ = ["aisle_visits", "far_first"]


def aisle_visits(tour: Tour, order: Sequence[int]) -> float:
    """How many times the route enters an aisle, per aisle with picks (1.0: each aisle picked in one go)."""
    aisles = [tour.aisles[p] for p in order]
    if not aisles:
        return 0.0
    entries = 1 + sum(a != b for a, b in itertools.pairwise(aisles))
    return entries / len(set(aisles))


def far_first(tour: Tour, order: Sequence[int]) -> float:
    """The rank correlation of visiting order with distance from the end depot: +1 walks to the farthest
    picks first and homewards after, -1 the other way round (0 where undefined)."""
    if len(order) < 2:
        return 0.0
    to_end = tour.matrix[[p + 1 for p in order], tour.n + 1]
    rho = spearmanr(range(len(order)), to_end)[0]
    return 0.0 if not math.isfinite(rho) else -float(rho)
