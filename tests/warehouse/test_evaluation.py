"""The trusted side of warehouse_tsp: route checks, time budgets, relabelling, references never below optimum."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from evaluators import evaluate_held_out, evaluate_program
from evolve.problems import get_problem, load_evaluator, read_initial_program
from problems.warehouse_tsp.exact import ratliff_rosenthal
from problems.warehouse_tsp.heuristics import POLICIES
from problems.warehouse_tsp.instances import GeneratorConfig, build_splits, generate, pairwise_distances
from problems.warehouse_tsp.ortools_solver import solve_ortools
from problems.warehouse_tsp.routes import check_route, make_view
from sandboxes import ProcessSandbox

ALL = ("capacity", "precedence", "one_way", "start_end")


@pytest.fixture(scope="module")
def sandbox():
    return ProcessSandbox()


@pytest.fixture(scope="module")
def problem():
    return get_problem("warehouse_tsp")


def _evaluator(problem, **params):
    return load_evaluator(dataclasses.replace(problem, params={**problem.params, **params}))


def test_splits_are_seeded_sized_and_representative():
    cfg = GeneratorConfig()
    splits = build_splits(cfg)
    assert {k: len(v) for k, v in splits.items()} == {"train": 60, "val": 60, "test": 240, "shifted": 60}
    build_splits.cache_clear()
    again = build_splits(GeneratorConfig())
    assert [(t.aisles, t.ys, t.start) for t in again["train"]] == [(t.aisles, t.ys, t.start) for t in splits["train"]]
    pool = {(t.aisles, t.ys) for t in generate(cfg, cfg.pool_size, cfg.seed, "pool")}
    assert all((t.aisles, t.ys) in pool for t in splits["train"])  # medoids of the pool
    sizes = [t.n for t in splits["train"]]
    assert min(sizes) < 20 and max(sizes) > 70  # they span the pick counts
    assert {t.storage for t in splits["train"]} == {"random", "abc"} and len({t.start for t in splits["train"]}) == 3
    other = build_splits(GeneratorConfig(seed=7))
    assert [t.ys for t in other["val"]] != [t.ys for t in splits["val"]]
    shifted = splits["shifted"][0].layout
    assert shifted.n_aisles > splits["train"][0].layout.n_aisles


def test_the_pool_distances_are_the_one_shot_broadcast_bit_for_bit():
    """The medoids (the train split, whose optimum and references were confirmed) come from these distances:
    computing them a block at a time to save memory must not move one bit."""
    cfg = GeneratorConfig()
    points = np.array([t.features() for t in generate(cfg, cfg.pool_size, cfg.seed, "pool")])
    scaled = (points - points.mean(0)) / np.where(points.std(0) > 0, points.std(0), 1.0)
    dense = np.sqrt(((scaled[:, None, :] - scaled[None, :, :]) ** 2).sum(-1))
    assert np.array_equal(pairwise_distances(scaled), dense)
    assert np.array_equal(pairwise_distances(scaled, rows=7), dense)  # a last block shorter than the others


def test_route_checks_reject_every_kind_of_bad_route():
    plain = build_splits(GeneratorConfig())["train"][3]
    view = make_view(plain, np.random.default_rng(0), 50)
    ids = [p["id"] for p in view.instance["picks"]]
    assert check_route(plain, ids, view.pick_of_id).feasible
    assert "every pick exactly once" in check_route(plain, ids[:-1], view.pick_of_id).reason
    assert "twice" in check_route(plain, ids + ids[:1], view.pick_of_id).reason
    assert "not a pick" in check_route(plain, ids[:-1] + [max(ids) + 1], view.pick_of_id).reason
    assert "only int ids" in check_route(plain, ids[:-1] + [float(ids[-1])], view.pick_of_id).reason
    assert "only int ids" in check_route(plain, [True] + ids[1:], view.pick_of_id).reason
    assert "only int ids" in check_route(plain, [str(ids[0])] + ids[1:], view.pick_of_id).reason
    assert "list of pick ids" in check_route(plain, {"route": ids}, view.pick_of_id).reason
    assert "no cart capacity" in check_route(plain, [0] + ids, view.pick_of_id).reason

    tour = next(t for t in build_splits(GeneratorConfig(constraints=ALL))["train"]
                if t.capacity is not None and t.precedence and len(set(t.classes)) > 1)
    view = make_view(tour, np.random.default_rng(0), 50)
    ids = [p["id"] for p in view.instance["picks"]]
    fragile_first = sorted(ids, key=lambda i: -tour.classes[view.pick_of_id[i]])
    assert "classes must not decrease" in check_route(tour, fragile_first, view.pick_of_id).reason
    in_class_order = sorted(ids, key=lambda i: tour.classes[view.pick_of_id[i]])
    assert "capacity" in check_route(tour, in_class_order, view.pick_of_id).reason
    one_trip_each = [x for i in in_class_order for x in (i, 0)][:-1]  # unload after every pick
    assert check_route(tour, one_trip_each, view.pick_of_id).feasible


def test_every_call_gets_fresh_ids_and_order():
    tour = build_splits(GeneratorConfig())["train"][5]
    a, b = (make_view(tour, np.random.default_rng(s), 50) for s in (1, 2))
    assert {p["id"] for p in a.instance["picks"]} != {p["id"] for p in b.instance["picks"]}
    assert [(p["aisle"], p["y"]) for p in a.instance["picks"]] != [(p["aisle"], p["y"]) for p in b.instance["picks"]]
    assert sorted(a.pick_of_id.values()) == list(range(tour.n))
    # the matrix the candidate sees is the tour's, in the shuffled order
    order = [a.pick_of_id[p["id"]] for p in a.instance["picks"]]
    assert np.allclose(np.array(a.instance["distance"])[1:-1, 1:-1], tour.matrix[1:-1, 1:-1][np.ix_(order, order)],
                       atol=1e-3)


def test_views_are_fixed_per_run_and_differ_between_runs(problem, sandbox):
    run, again, other = (load_evaluator(problem, run_seed=seed) for seed in (5, 5, 6))
    tour = run.splits["train"][7]
    assert run.view(tour) == again.view(tour) and run.view(tour).pick_of_id != other.view(tour).pick_of_id
    assert run.view(tour).pick_of_id != run.view(run.splits["train"][8]).pick_of_id
    in_given_order = "def solve(instance):\n    return [p['id'] for p in instance['picks']]\n"  # order-dependent
    first, second, elsewhere = (evaluate_program(e, sandbox, in_given_order, problem.limits)
                                for e in (run, again, other))
    assert first.valid and first.score == second.score and first.metrics["gap_pct"] == second.metrics["gap_pct"]
    assert elsewhere.valid and elsewhere.score != first.score


def test_a_memorised_answer_table_cannot_pass(problem, sandbox):
    evaluator = _evaluator(problem)
    tour = evaluator.smoke_set[0]
    view = make_view(tour, np.random.default_rng(99), 50)  # what a candidate saw once
    remembered = [p["id"] for p in view.instance["picks"]]
    source = f"REMEMBERED = {remembered!r}\ndef solve(instance):\n    return REMEMBERED\n"
    result = evaluate_program(evaluator, sandbox, source, problem.limits)
    assert not result.valid and "not a pick of this tour" in result.feedback


def test_time_budget_is_cpu_time_measured_outside_and_enforced(problem, sandbox):
    evaluator = _evaluator(problem, time_budget_ms=40.0, kill_multiple=500)  # a loaded machine has 20 s
    seed = read_initial_program(problem)
    burn = ("    import time\n    spent = time.thread_time()\n    while time.thread_time() - spent < 0.4:\n"
            "        pass\n    return route\n")
    slow = seed.replace("    return route\n", burn)  # ten times the budget, in CPU
    result = evaluate_program(evaluator, sandbox, slow, problem.limits)
    assert not result.valid and "of CPU time, over the time budget of 40 ms" in result.feedback, result.feedback
    patched = "import time\ntime.perf_counter = lambda: 0.0\ntime.monotonic = lambda: 0.0\n" + slow
    assert not evaluate_program(evaluator, sandbox, patched, problem.limits).valid  # its clocks are its own
    napping = seed.replace("    return route\n", "    import time\n    time.sleep(0.06)\n    return route\n")
    result = evaluate_program(evaluator, sandbox, napping, problem.limits)
    assert result.valid and result.metrics["max_ms"] < 40, result.feedback  # waiting is not computing
    hang = seed.replace("    return route\n", "    import time\n    time.sleep(5)\n    return route\n")
    result = evaluate_program(_evaluator(problem, time_budget_ms=40.0), sandbox, hang, problem.limits)
    assert not result.valid and "20 times the time budget" in result.feedback and result.seconds < 4.5


def test_cpu_at_import_is_charged_to_the_first_tour(problem, sandbox):
    evaluator = _evaluator(problem, time_budget_ms=40.0, kill_multiple=500)
    burn = "import time\n_spent = time.process_time()\nwhile time.process_time() - _spent < 0.5:\n    pass\n"
    result = evaluate_program(evaluator, sandbox, burn + read_initial_program(problem), problem.limits)
    assert not result.valid and "of CPU time, over the time budget of 40 ms" in result.feedback, result.feedback
    assert "the first from the import" in result.feedback and result.stage == "smoke"


def test_soft_mode_charges_infeasible_tours_instead_of_rejecting(problem, sandbox):
    seed = read_initial_program(problem)
    drops_one = seed.replace("    return route\n", "    return route[:-1] if len(route) > 75 else route\n")
    hard = evaluate_program(_evaluator(problem), sandbox, drops_one, problem.limits)
    assert not hard.valid and "picks; every pick exactly once" in hard.feedback
    soft = evaluate_program(_evaluator(problem, mode="soft"), sandbox, drops_one, problem.limits)
    seed_score = evaluate_program(_evaluator(problem, mode="soft"), sandbox, seed, problem.limits)
    assert soft.valid and soft.metrics["feasible_share"] < 1 and soft.score < seed_score.score


def test_seed_is_the_baseline_and_validation_is_separate(problem, sandbox):
    evaluator = _evaluator(problem)
    seed = read_initial_program(problem)
    train = evaluate_program(evaluator, sandbox, seed, problem.limits)
    assert train.valid and train.metrics["improvement_over_seed_pct"] == pytest.approx(0.0, abs=1e-9)
    assert train.metrics["gap_to_optimum_pct"] > 3 and train.metrics["tours"] == 60
    val = evaluate_held_out(evaluator, sandbox, seed, problem.limits, "validate")
    assert val.valid and val.metrics["tours"] == 60 and val.score != train.score
    assert "val:" in val.feedback and "val:" not in train.feedback


def test_constrained_seed_is_feasible_everywhere(problem, sandbox):
    for layout in ("single", "multi"):
        evaluator = _evaluator(problem, constraints=list(ALL), layout=layout)
        result = evaluate_program(evaluator, sandbox, read_initial_program(problem), problem.limits)
        assert result.valid and result.metrics["feasible_share"] == 1.0, result.feedback
        assert result.metrics["gap_reference"] == "lower bound" and result.metrics["gap_pct"] > 0  # one-way: no DP
        assert "gap_to_optimum_pct" not in result.metrics and result.metrics["gap_to_lower_bound_pct"] > 0


def test_no_reference_beats_the_exact_optimum():
    tours = [t for t in build_splits(GeneratorConfig())["val"] if t.is_exact_solvable]
    for tour in tours[:25]:
        optimum, _ = ratliff_rosenthal(tour.layout, tour.start[0], tour.aisles, tour.ys)
        ortools = check_route(tour, solve_ortools(tour, 0.1))
        assert ortools.feasible and ortools.length >= optimum - 1e-6
        for name, policy in POLICIES.items():
            assert check_route(tour, [i + 1 for i in policy(tour)]).length >= optimum - 1e-6, name


def test_ortools_honours_every_constraint_and_the_bound_stays_below():
    from problems.warehouse_tsp.evaluator import _reference
    for layout in ("single", "multi"):
        tours = build_splits(GeneratorConfig(constraints=ALL, layout=layout))["train"]
        for tour in tours[:12]:
            route = solve_ortools(tour, 0.1)
            check = check_route(tour, route)
            assert check.feasible, (tour.name, tour.constraint_names(), check.reason)
            assert _reference(tour).best <= check.length + 1e-6
            if tour.start != tour.end:
                assert 0 not in route
