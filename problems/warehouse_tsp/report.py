"""The reference table of `evolve check`: every classic policy, the seed, OR-Tools and the optimum."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from problems.warehouse_tsp import initial
from problems.warehouse_tsp.bounds import lower_bound
from problems.warehouse_tsp.exact import ratliff_rosenthal
from problems.warehouse_tsp.heuristics import POLICIES
from problems.warehouse_tsp.instances import Tour
from problems.warehouse_tsp.ortools_solver import solve_ortools
from problems.warehouse_tsp.routes import check_route, make_view

__all__ = ["reference_rows"]

_BEST = "_best"  # the optimum or bound every gap is measured against


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - started) * 1000


def _tour_figures(args: tuple[Tour, float, object]) -> dict[str, tuple[float | None, float]]:
    """(length or None when infeasible, milliseconds) of every method on one tour."""
    tour, ortools_seconds, bound_of = args
    out: dict[str, tuple[float | None, float]] = {}
    for name, policy in POLICIES.items():
        order, ms = _timed(lambda: policy(tour))
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


def reference_rows(tours: list[Tour], ortools_seconds: float, bound_of, workers: int | None = None) -> list[dict]:
    """One row per method: mean metres per pick, gap to the optimum (or bound), gain over the seed."""
    jobs = [(tour, ortools_seconds, bound_of) for tour in tours]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(tours) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            figures = list(pool.map(_tour_figures, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        figures = [_tour_figures(job) for job in jobs]
    best = [f.pop(_BEST)[0] for f in figures]
    seed = [f["greedy seed"][0] for f in figures]
    all_exact = all(tour.is_exact_solvable for tour in tours)
    rows = []
    for method in figures[0]:
        done = [(i, f[method]) for i, f in enumerate(figures) if f[method][0] is not None]
        is_bound = method.startswith("lower bound")
        if not done:
            rows.append({"method": method, "metres/pick": None, "feasible": 0.0})
            continue
        mpp = np.mean([length / tours[i].n for i, (length, _) in done])
        seed_mpp = np.mean([seed[i] / tours[i].n for i, _ in done])
        rows.append({
            "method": method,
            "metres/pick": float(mpp),
            f"gap to {'optimum' if all_exact else 'opt. or bound'} %": float(np.mean(
                [100 * (length - best[i]) / best[i] for i, (length, _) in done if best[i] > 0])),
            "vs seed %": float(100 * (1 - mpp / seed_mpp)),
            "feasible": None if is_bound else len(done) / len(tours),
            "ms/tour": float(np.mean([ms for _, (_, ms) in done])),
        })
    return rows
