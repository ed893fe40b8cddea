"""What the candidate sees of a tour, and the trusted check of the route it returns.

The picks are shuffled and given random ids, drawn per run (the evaluator seeds them from the run's seed
and the tour), so the same program scores the same within a run, and a table of answers keyed by ids or
positions learnt in one run fails in another (and on the held-out tours). A route is a list of pick ids; with
a cart capacity, `0` means "go back to the start depot and unload". The checker recomputes every length from
its own matrix.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from problems.warehouse_tsp.instances import Tour

__all__ = ["UNLOAD", "CandidateView", "RouteCheck", "check_route", "make_view"]

UNLOAD = 0


@dataclass(frozen=True)
class CandidateView:
    """One call's input (`instance`, plain JSON data) and how its ids map back to the tour's picks."""

    instance: dict
    pick_of_id: dict[int, int]


def make_view(tour: Tour, rng: np.random.Generator, time_budget_ms: float) -> CandidateView:
    """The tour as the candidate gets it: shuffled, relabelled, with its distance matrix."""
    order = rng.permutation(tour.n)
    ids = rng.choice(np.arange(1, 10 * tour.n + 1000), size=tour.n, replace=False)
    index = np.concatenate([[0], order + 1, [tour.n + 1]])
    matrix = np.round(tour.matrix[np.ix_(index, index)], 3)
    layout = tour.layout
    picks = [{"id": int(ids[k]), "aisle": tour.aisles[p], "y": tour.ys[p], "weight": tour.weights[p],
              "class": tour.classes[p]} for k, p in enumerate(order)]
    instance = {
        "picks": picks,
        "start": {"aisle": tour.start[0], "y": tour.start[1]},
        "end": {"aisle": tour.end[0], "y": tour.end[1]},
        "distance": matrix.tolist(),
        "layout": {"n_aisles": layout.n_aisles, "aisle_length": layout.length,
                   "aisle_spacing": layout.aisle_spacing, "cross_aisles": layout.cross_aisles,
                   "one_way": [layout.direction(a) for a in range(layout.n_aisles)]},
        "capacity": tour.capacity,
        "precedence": tour.precedence,
        "time_budget_ms": time_budget_ms,
    }
    return CandidateView(instance, {int(ids[k]): int(p) for k, p in enumerate(order)})


@dataclass(frozen=True)
class RouteCheck:
    """The verdict on one route: its length in metres and the pick indices in visiting order, or why it is
    infeasible."""

    length: float | None
    reason: str = ""
    order: tuple[int, ...] = ()

    @property
    def feasible(self) -> bool:
        """True when the route passed every check."""
        return self.length is not None


def check_route(tour: Tour, route: object, pick_of_id: dict[int, int] | None = None) -> RouteCheck:
    """Validate `route` against the tour's rules and measure it.

    `pick_of_id` maps the ids the candidate saw to pick indices; None means the route holds pick
    indices plus one (the form the trusted references use, so that 0 still means unload).
    """
    if not isinstance(route, list):
        return RouteCheck(None, f"solve must return a list of pick ids, got {type(route).__name__}")
    mapping = pick_of_id if pick_of_id is not None else {i + 1: i for i in range(tour.n)}
    picks: list[int] = []
    seen: set[int] = set()
    path = [0]
    load, trip_class = 0.0, 0
    for step in route:
        if type(step) is not int:
            return RouteCheck(None, f"route holds {step!r} of type {type(step).__name__}; only int ids are allowed")
        if step == UNLOAD:
            if tour.capacity is None:
                return RouteCheck(None, "route returns to the depot (0) but this tour has no cart capacity")
            path.append(0)
            load, trip_class = 0.0, 0
            continue
        if step not in mapping:
            return RouteCheck(None, f"route holds id {step}, which is not a pick of this tour")
        pick = mapping[step]
        if pick in seen:
            return RouteCheck(None, f"route visits pick id {step} twice")
        seen.add(pick)
        picks.append(pick)
        path.append(pick + 1)
        if tour.capacity is not None:
            load += tour.weights[pick]
            if load > tour.capacity + 1e-9:
                return RouteCheck(None, f"cart capacity {tour.capacity:g} exceeded at pick id {step} "
                                        f"(load {load:.2f}); insert 0 to unload at the depot first")
        if tour.precedence:
            if tour.classes[pick] < trip_class:
                return RouteCheck(None, f"pick id {step} of class {tour.classes[pick]} comes after class "
                                        f"{trip_class} in the same trip; classes must not decrease")
            trip_class = tour.classes[pick]
    if len(picks) != tour.n:
        return RouteCheck(None, f"route visits {len(picks)} of {tour.n} picks; every pick exactly once")
    path.append(tour.n + 1)
    matrix = tour.matrix
    return RouteCheck(float(sum(matrix[a, b] for a, b in itertools.pairwise(path))), order=tuple(picks))
