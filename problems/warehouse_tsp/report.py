"""The reference table of `evolve check`: every classic policy, the seed, OR-Tools and the optimum."""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from problems.warehouse_tsp import initial
from problems.warehouse_tsp.best_known import BestKnown
from problems.warehouse_tsp.bounds import lower_bound
from problems.warehouse_tsp.exact import ratliff_rosenthal
from problems.warehouse_tsp.heuristics import POLICIES
from problems.warehouse_tsp.instances import Tour
from problems.warehouse_tsp.ortools_solver import solve_ortools
from problems.warehouse_tsp.routes import check_route, make_view

__all__ = ["gap_label", "reference_rows"]

_BEST = "_best"  # the optimum or bound every gap is measured against
_KINDS = ("optimum", "best known", "lower bound")


def gap_label(kinds: set[str]) -> str:
    """What a mean gap is measured against, e.g. "optimum or best known"."""
    return " or ".join(kind for kind in _KINDS if kind in kinds)


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - started) * 1000


def _tour_figures(args: tuple[Tour, float, object]) -> dict[str, tuple[float | None, float]]:
    """(length or None when infeasible, milliseconds) of every method on one tour."""
    tour, ortools_seconds, bound_of = args
    out: dict[str, tuple[float | None, float]] = {}
    for name, policy in POLICIES.items():
        order, ms = _timed(functools.partial(policy, tour))
        out[name] = (check_route(tour, [i + 1 for i in order]).length, ms)
    view = make_view(tour, np.random.default_rng(0), 1e9)
    route, ms = _timed(lambda: initial.solve(view.instance))
    out["greedy seed"] = (check_route(tour, route, view.pick_of_id).length, ms)
    route, ms = _timed(lambda: solve_ortools(tour, ortools_seconds))
    out[f"OR-Tools GLS {ortools_seconds:g} s"] = (check_route(tour, route).length, ms)
    if tour.is_exact_solvable:
        (length, _), ms = _timed(lambda: ratliff_rosenthal(tour.layout, tour.start[0], tour.aisles, tour.ys))
        out["exact (Ratliff-Rosenthal)"] = (length, ms)
    else:
        bound, ms = _timed(lambda: lower_bound(tour, out["greedy seed"][0]))
        out["lower bound (1-tree, relaxed)"] = (bound, ms)
    out[_BEST] = (bound_of(tour).best, 0.0)
    return out


def reference_rows(tours: list[Tour], ortools_seconds: float, bound_of, known: list[BestKnown | None],
                   workers: int | None = None) -> list[dict]:
    """One row per method: mean metres per pick, gap to each tour's reference, gain over the seed.

    `bound_of(tour).best` is the optimum or a lower bound; `known[i]`, when given, replaces it for tour i
    as the best-known length and adds a row of its own.
    """
    jobs = [(tour, ortools_seconds, bound_of) for tour in tours]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(tours) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            figures = list(pool.map(_tour_figures, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        figures = [_tour_figures(job) for job in jobs]
    best = [f.pop(_BEST)[0] for f in figures]
    kinds = set()
    entries = [entry for entry in known if entry is not None]
    known_row = f"best known ({BestKnown.describe(entries)})" if entries else ""
    for i, (tour, entry) in enumerate(zip(tours, known)):
        if entry is not None:
            best[i] = entry.length
            figures[i][known_row] = (entry.length, 1000 * entry.seconds * entry.runs)
        kinds.add("optimum" if tour.is_exact_solvable else "lower bound" if entry is None else "best known")
    seed = [f["greedy seed"][0] for f in figures]
    methods = list(dict.fromkeys(method for f in figures for method in f))
    rows = []
    for method in methods:
        done = [(i, f[method]) for i, f in enumerate(figures) if f.get(method, (None,))[0] is not None]
        is_reference = method.startswith(("lower bound", "best known"))  # not a method a picker could follow
        if not done:
            rows.append({"method": method, "metres/pick": None, "feasible": 0.0})
            continue
        mpp = np.mean([length / tours[i].n for i, (length, _) in done])
        seed_mpp = np.mean([seed[i] / tours[i].n for i, _ in done])
        rows.append({
            "method": method,
            "metres/pick": float(mpp),
            f"gap to {gap_label(kinds)} %": float(np.mean(
                [100 * (length - best[i]) / best[i] for i, (length, _) in done if best[i] > 0])),
            "vs seed %": float(100 * (1 - mpp / seed_mpp)),
            "feasible": None if is_reference else len(done) / len(tours),
            "ms/tour": float(np.mean([ms for _, (_, ms) in done])),
        })
    return rows
