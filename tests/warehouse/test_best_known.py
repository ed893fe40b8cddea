"""Best-known references for tours without an exact optimum: long OR-Tools runs, cached, used for gaps."""

from __future__ import annotations

import dataclasses
import json

import pytest

from evaluators import evaluate_program
from evolve.problems import get_problem, load_evaluator, read_initial_program
from problems.warehouse_tsp.best_known import BestKnownCache, tour_key
from problems.warehouse_tsp.evaluator import _reference
from problems.warehouse_tsp.instances import GeneratorConfig, build_splits
from problems.warehouse_tsp.ortools_solver import METAHEURISTICS, solve_ortools
from problems.warehouse_tsp.routes import check_route
from sandboxes import ProcessSandbox

SMALL = {"pool_size": 200, "val_size": 6, "test_size": 4, "shifted_size": 2}


@pytest.fixture(scope="module")
def multi_tours():
    return build_splits(GeneratorConfig(layout="multi", **SMALL))["train"][:4]


def test_every_metaheuristic_gives_a_feasible_route_on_constrained_tours():
    tour = next(t for t in build_splits(GeneratorConfig(layout="multi", constraints=("capacity", "precedence",
                                                                                      "one_way"), **SMALL))["train"]
                if t.capacity is not None and t.precedence)
    for metaheuristic in METAHEURISTICS:
        check = check_route(tour, solve_ortools(tour, 0.1, metaheuristic))
        assert check.feasible and check.length >= _reference(tour).bound - 1e-6, (metaheuristic, check.reason)
    with pytest.raises(AttributeError):
        solve_ortools(tour, 0.1, "NO_SUCH_METAHEURISTIC")


def test_cache_computes_once_persists_and_stays_between_bound_and_seed(tmp_path, multi_tours):
    cache = BestKnownCache(tmp_path / "best.json")
    exact = build_splits(GeneratorConfig(**SMALL))["train"][:2]
    assert cache.missing(exact + multi_tours, 0.1) == multi_tours  # the DP covers the single-block tours
    assert cache.fill(multi_tours, 0.1, workers=2) == len(multi_tours)
    assert cache.missing(multi_tours, 0.1) == [] and cache.fill(multi_tours, 0.1) == 0
    for tour in multi_tours:
        entry, ref = cache.get(tour, 0.1), _reference(tour)
        assert entry.runs == len(METAHEURISTICS) and ref.bound - 1e-6 <= entry.length <= ref.seed + 1e-6
    reread = BestKnownCache(tmp_path / "best.json")
    assert {tour_key(t): reread.get(t, 0.1) for t in multi_tours} == \
        {tour_key(t): cache.get(t, 0.1) for t in multi_tours}
    assert reread.get(multi_tours[0], 0.5) is None  # asked for longer runs than those cached: recomputed
    longer = reread.entries[tour_key(multi_tours[0])].length
    reread.fill(multi_tours[:1], 0.2)
    assert reread.get(multi_tours[0], 0.2).length <= longer  # never worse than what was known
    assert BestKnownCache(tmp_path / "best.json").get(multi_tours[1], 0.1) is not None  # the others were kept

    (tmp_path / "best.json").write_text('{"not": "an entry"')
    assert BestKnownCache(tmp_path / "best.json").entries == {}  # a damaged file is recomputed, never trusted


def test_an_unwritable_cache_warns_in_one_line_and_keeps_the_results(tmp_path, multi_tours, capsys):
    (tmp_path / "a_file").write_text("")
    cache = BestKnownCache(tmp_path / "a_file" / "best.json")
    assert cache.fill(multi_tours[:1], 0.05) == 1 and cache.get(multi_tours[0], 0.05) is not None
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not cache" in err and "EVOLVE_CACHE_DIR" in err


def test_tour_keys_tell_constraints_apart(multi_tours):
    tour = multi_tours[0]
    assert tour_key(tour) == tour_key(dataclasses.replace(tour))
    assert tour_key(tour) != tour_key(dataclasses.replace(tour, precedence=not tour.precedence))
    assert tour_key(tour) != tour_key(dataclasses.replace(tour, capacity=123.0))


def test_evaluator_measures_gaps_against_best_known_and_reports_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOLVE_CACHE_DIR", str(tmp_path))
    problem = get_problem("warehouse_tsp")
    problem = dataclasses.replace(problem, params={**problem.params, "layout": "multi", "train_size": 8,
                                                   "best_known_seconds": 0.1, "ortools_seconds": 0.05, **SMALL})
    seed = read_initial_program(problem)
    sandbox = ProcessSandbox()
    before = evaluate_program(load_evaluator(problem), sandbox, seed, problem.limits)
    assert before.valid and before.metrics["gap_reference"] == "lower bound"
    assert before.metrics["gap_pct"] == pytest.approx(before.metrics["gap_to_lower_bound_pct"])

    evaluator = load_evaluator(problem)
    rows = {row["method"]: row for row in evaluator.references("train")}  # fills the cache for train
    known = rows["best known (best of 3 OR-Tools runs x 0.1 s)"]
    assert "gap to best known %" in known and known["gap to best known %"] == pytest.approx(0.0, abs=1e-9)
    assert known["feasible"] is None and rows["greedy seed"]["gap to best known %"] > 0
    stored = json.loads((tmp_path / "warehouse_tsp_best_known.json").read_text())
    assert len(stored) == 8

    after = evaluate_program(load_evaluator(problem), sandbox, seed, problem.limits)
    assert after.score == before.score and after.metrics["gap_reference"] == "best known"
    assert 0 < after.metrics["gap_pct"] < after.metrics["gap_to_lower_bound_pct"]
    assert "mean gap to best known" in after.feedback
