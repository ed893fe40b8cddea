"""Trusted scoring for warehouse picker routing: metres per pick on representative tours."""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

from evaluators import CandidateTimeout, Score, Session, SplitEvaluator
from problems.warehouse_tsp import initial
from problems.warehouse_tsp.best_known import BestKnown, BestKnownCache
from problems.warehouse_tsp.bounds import lower_bound
from problems.warehouse_tsp.descriptors import aisle_visits, far_first
from problems.warehouse_tsp.exact import ratliff_rosenthal
from problems.warehouse_tsp.instances import GeneratorConfig, Tour, build_splits
from problems.warehouse_tsp.report import gap_label, reference_rows
from problems.warehouse_tsp.routes import CandidateView, check_route, make_view

__all__ = ["Reference", "WarehouseRouting"]


@dataclass(frozen=True)
class Reference:
    """What a tour is compared against.

    Attributes:
        seed: the seed's route length.
        best: the optimum where the DP gives it, else the best-known length if cached, else `bound`.
        kind: which of those `best` is: "optimum", "best known" or "lower bound".
        bound: the optimum or a lower bound: no route is shorter.
    """

    seed: float
    best: float
    kind: str
    bound: float

    @property
    def exact(self) -> bool:
        """`best` is the optimum."""
        return self.kind == "optimum"


@functools.lru_cache(maxsize=4096)
def _reference(tour: Tour) -> Reference:
    """The seed and the optimum or lower bound of one tour (best-known lengths are laid over it)."""
    view = make_view(tour, np.random.default_rng(0), 1e9)
    seed = check_route(tour, initial.solve(view.instance), view.pick_of_id)
    if not seed.feasible:  # the seed is ours: this is a bug in the generator or the seed
        raise RuntimeError(f"the seed route of {tour.name} is infeasible: {seed.reason}")
    if tour.is_exact_solvable:
        optimum = ratliff_rosenthal(tour.layout, tour.start[0], tour.aisles, tour.ys)[0]
        return Reference(seed.length, optimum, "optimum", optimum)
    bound = lower_bound(tour, seed.length)
    return Reference(seed.length, bound, "lower bound", bound)


class WarehouseRouting(SplitEvaluator):
    """Scores `solve(instance) -> list[int]` by mean metres per pick over the training tours.

    Each tour is shown shuffled and relabelled (`view`): the same way for the whole run, seeded by the
    run's seed and the tour, and another way in a run with another seed. Its CPU time is measured here,
    outside the sandbox (so a busy machine does not change the verdict), and a call that used more than
    `time_budget_ms` of CPU makes that tour infeasible (a call is charged all the session's CPU since the
    previous call: the first call the program's import, every call what the program ran between calls);
    a call still running after `kill_multiple` times the budget of wall-clock time (a sleeper, a blocked
    call) is killed. Where the sandbox cannot
    measure CPU time, wall time is charged instead. In `hard` mode an infeasible tour makes the program
    invalid; in `soft` mode it is charged twice the seed's length for that tour. Validation tours are scored
    only through `validate`.
    Gaps are measured against the optimum, or where there is none against the best of long OR-Tools
    runs (`best_known_seconds` per run, computed once by `evolve check`), or else a lower bound.
    """

    entrypoint = "solve"
    reference_splits = ("train", "val", "test", "shifted")
    timing_metrics = ("ms_per_tour", "max_ms")

    def __init__(self, mode: str = "hard", time_budget_ms: float = 50.0, smoke_tours: int = 3,
                 ortools_seconds: float = 0.3, best_known_seconds: float = 1.0, kill_multiple: float = 20.0,
                 **generator: object) -> None:
        if mode not in ("hard", "soft"):
            raise ValueError(f"mode={mode!r}: use 'hard' or 'soft'")
        for key in ("picks", "storage", "depots", "constraints"):
            if key in generator:
                generator[key] = tuple(generator[key])
        self.generator = GeneratorConfig(**generator)
        self.mode = mode
        self.time_budget_ms = float(time_budget_ms)
        if kill_multiple < 1:
            raise ValueError(f"kill_multiple={kill_multiple}: the wall-clock kill must leave at least the budget")
        self.kill_multiple = float(kill_multiple)
        self.ortools_seconds = float(ortools_seconds)
        self.best_known_seconds = float(best_known_seconds)
        self.best_known = BestKnownCache()
        self.splits = build_splits(self.generator)
        self.smoke_set = sorted(self.splits["train"], key=lambda t: t.n)[:smoke_tours]

    def references(self, split: str) -> list[dict]:
        """Every reference method on one split (see `report.reference_rows`).

        Best-known routes missing from the cache are computed first (once per machine).
        """
        tours = self.splits[split]
        missing = self.best_known.missing(tours, self.best_known_seconds) if self.best_known_seconds > 0 else []
        if missing:
            print(f"{split}: {len(missing)} tours have no exact optimum; computing their best-known routes once "
                  f"(OR-Tools, {self.best_known_seconds:g} s per run, cached in {self.best_known.path})",
                  file=sys.stderr, flush=True)
            self.best_known.fill(missing, self.best_known_seconds)
        known = [self._best_known(tour) for tour in tours]
        return reference_rows(tours, self.ortools_seconds, _reference, known)

    def _best_known(self, tour: Tour) -> BestKnown | None:
        if tour.is_exact_solvable or self.best_known_seconds <= 0:
            return None
        return self.best_known.get(tour, self.best_known_seconds)

    def reference(self, tour: Tour) -> Reference:
        """What one tour is compared against (see `Reference`)."""
        base, known = _reference(tour), self._best_known(tour)
        return base if known is None else replace(base, best=known.length, kind="best known")

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """The score of each of `split`'s tours' reference route (the optimum, else the cached best-known,
        else a lower bound): no program scores above it, where it is an optimum or a bound."""
        refs = [self.reference(tour) for tour in self.splits[split]]
        value = -float(np.mean([ref.best / tour.n for ref, tour in zip(refs, self.splits[split])]))
        return {gap_label({ref.kind for ref in refs}): value}

    def view(self, tour: Tour) -> CandidateView:
        """The tour as the candidate sees it in this run: shuffled and relabelled from the run's seed."""
        return make_view(tour, np.random.default_rng(self.seed_for(tour.name)), self.time_budget_ms)

    def score(self, candidate: Session, tours: list[Tour], split: str) -> Score:
        """Run the candidate on every tour, check each route here, and summarise."""
        budget = self.time_budget_ms
        lengths, per_pick, seeds, gaps, exact_gaps, bound_gaps, times, failures = [], [], [], [], [], [], [], []
        visits, homeward = [], []
        kinds = set()
        clock = "CPU" if candidate.cpu_seconds() is not None else "wall"
        for tour in tours:
            view = self.view(tour)
            started = time.perf_counter()
            try:
                route = candidate.call("solve", view.instance, timeout=self.kill_multiple * budget / 1000)
            except CandidateTimeout:
                return Score.invalid(f"{split} tour {tour.name} ({tour.n} picks): solve was still running after "
                                     f"{self.kill_multiple:g} times the time budget of {budget:g} ms and was killed")
            cpu = candidate.cpu_charge()  # since the previous call: its import, and what it ran between calls
            elapsed_ms = 1000 * (cpu if cpu is not None else time.perf_counter() - started)
            times.append(elapsed_ms)
            check = check_route(tour, route, view.pick_of_id)
            reason = check.reason
            if check.feasible and elapsed_ms > budget:
                reason = f"took {elapsed_ms:.1f} ms of {clock} time, over the time budget of {budget:g} ms" + (
                    " (CPU time counts from the end of the previous call, the first from the import)"
                    if clock == "CPU" else "")
            ref = self.reference(tour)
            if reason:
                constraints = ", ".join(tour.constraint_names()) or "no constraints"
                failures.append(f"{tour.name} ({tour.n} picks, {constraints}): {reason}")
                if self.mode == "hard":
                    return Score.invalid(f"{split} tour {failures[0]}")
                length = 2 * ref.seed
            else:
                length = check.length
                visits.append(aisle_visits(tour, check.order))
                homeward.append(far_first(tour, check.order))
            lengths.append(length)
            per_pick.append(length / tour.n)
            seeds.append(ref.seed / tour.n)
            gaps.append(100 * (length - ref.best) / ref.best if ref.best > 0 else 0.0)
            kinds.add(ref.kind)
            if ref.exact:
                exact_gaps.append(gaps[-1])
            else:
                bound_gaps.append(100 * (length - ref.bound) / ref.bound if ref.bound > 0 else 0.0)
        mpp, seed_mpp = float(np.mean(per_pick)), float(np.mean(seeds))
        improvement = 100 * (1 - mpp / seed_mpp)
        worst = int(np.argmax(gaps))
        metrics = {
            "metres_per_pick": mpp,
            "seed_metres_per_pick": seed_mpp,
            "improvement_over_seed_pct": improvement,
            "gap_pct": float(np.mean(gaps)),
            "gap_reference": gap_label(kinds),
            "feasible_share": 1 - len(failures) / len(tours),
            "ms_per_tour": float(np.mean(times)),
            "max_ms": float(np.max(times)),
            "tours": len(tours),
        }
        if exact_gaps:
            metrics["gap_to_optimum_pct"] = float(np.mean(exact_gaps))
        if bound_gaps:
            metrics["gap_to_lower_bound_pct"] = float(np.mean(bound_gaps))
        feedback = (f"{split}: {mpp:.4f} m/pick, {improvement:+.2f}% vs the seed ({seed_mpp:.4f}); mean gap to "
                    f"{metrics['gap_reference']} {metrics['gap_pct']:.2f}%, worst {tours[worst].name} "
                    f"({tours[worst].n} picks) {gaps[worst]:.2f}%; {metrics['ms_per_tour']:.1f} ms of {clock} time "
                    f"per tour (max {metrics['max_ms']:.1f}, budget {budget:g})")
        if failures:
            feedback += f"; {len(failures)} infeasible, e.g. {failures[0]}"
        features = {"aisle_visits": float(np.mean(visits)) if visits else 0.0,
                    "far_first": float(np.mean(homeward)) if homeward else 0.0}
        return Score(value=-mpp, metrics=metrics, feedback=feedback, features=features)
