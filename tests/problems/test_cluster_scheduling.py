"""cluster_scheduling: seeded traces, the scheduler's accounting on a hand-made trace, the reference rules,
and candidates through the sandbox."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators import evaluate_held_out, evaluate_program
from evolve.problems import load_evaluator
from problems.cluster_scheduling.heuristics import (
    RULES,
    alphaevolve,
    best_fit,
    dot_product,
    first_fit,
    worst_fit,
)
from problems.cluster_scheduling.scoring import summarise
from problems.cluster_scheduling.simulator import simulate, stranded, thresholds
from problems.cluster_scheduling.traces import GeneratorConfig, Trace, build_splits, generate

PROBLEM = "cluster_scheduling"


def _trace(tasks, window, capacity=((4.0, 8.0), (4.0, 8.0))):
    """A hand-made trace from (arrival, cpu, mem, lifetime) rows."""
    a = np.array(tasks, dtype=float)
    return Trace("hand", np.array(capacity, dtype=float), a[:, 0], a[:, 1], a[:, 2], a[:, 3], window)


# -- traces -------------------------------------------------------------------------------------------

def test_traces_are_seeded_and_shaped_as_documented():
    cfg = GeneratorConfig()
    splits = build_splits(cfg)
    build_splits.cache_clear()
    again = build_splits(GeneratorConfig())
    assert splits is not again
    for a, b in zip(splits["train"] + splits["test"], again["train"] + again["test"]):
        for field in ("capacity", "arrival", "cpu", "mem", "lifetime"):
            assert np.array_equal(getattr(a, field), getattr(b, field))
    assert [len(splits[s]) for s in ("train", "val", "test")] == [4, 4, 16]
    assert not np.array_equal(generate(cfg, "train", 0).cpu, generate(cfg, "val", 0).cpu)
    assert not np.array_equal(generate(cfg, "train", 0).cpu, generate(GeneratorConfig(seed=7), "train", 0).cpu)
    for trace in splits["train"]:
        shapes, counts = np.unique(trace.capacity, axis=0, return_counts=True)
        assert dict(zip(map(tuple, shapes), counts)) == {(32.0, 128.0): 12, (32.0, 256.0): 6, (64.0, 128.0): 6}
        assert trace.tasks == 1500 and (np.diff(trace.arrival) > 0).all()
        assert (trace.cpu * 4 == np.round(trace.cpu * 4)).all() and (trace.mem * 4 == np.round(trace.mem * 4)).all()
        assert trace.cpu.min() >= 0.25 and trace.cpu.max() <= 24 and trace.mem.min() >= 0.25 and trace.mem.max() <= 96
        assert trace.window == (pytest.approx(0.25 * trace.arrival[-1]), trace.arrival[-1])
    demand = [(t.cpu * t.lifetime).sum() / t.arrival[-1] / t.capacity[:, 0].sum() for t in splits["train"]]
    assert 0.6 < np.mean(demand) < 1.0  # offered CPU load near the configured 0.8
    ratio = sum(t.mem.sum() for t in splits["train"]) / sum(t.cpu.sum() for t in splits["train"])
    assert 3.2 < ratio < 4.8  # tasks ask for the fleet's 4 GiB per core on average


def test_a_trace_head_keeps_the_first_tasks():
    trace = build_splits(GeneratorConfig())["train"][0]
    head = trace.head(100)
    assert head.tasks == 100 and np.array_equal(head.cpu, trace.cpu[:100])
    assert head.window[1] == trace.arrival[99] and head.window[0] == pytest.approx(0.25 * trace.arrival[99])


# -- the scheduler's accounting -------------------------------------------------------------------------

def test_stranded_resources_on_a_hand_made_trace():
    """Two machines of 4 cores / 8 GiB, measured over [0, 10); thresholds are the smallest requests (1, 1).

    t=0    task 0 (1 core, 8 GiB, leaves at 6) -> machine 0 (a tie: the first); its 3 free cores are stranded
    t=5    task 1 (4 cores, 2 GiB) fits only machine 1; its 6 free GiB are stranded
    t=5.5  task 2 (2 cores, 2 GiB) fits nowhere and waits
    t=6    task 0 leaves; task 2 goes to machine 0 (free 2 cores, 6 GiB: nothing stranded there)
    t=10   task 3 arrives at the window's end
    stranded CPU: 3 x 6 = 18 core-units of 4 x 2 x 10 = 80 -> 22.5%
    stranded memory: 6 x (10 - 5) = 30 GiB-units of 160 -> 18.75%; mean 20.625%
    pending: 2 cores and 2 GiB for 0.5 -> 1.25% and 0.625%; mean 0.9375%
    """
    trace = _trace([(0, 1, 8, 6), (5, 4, 2, 100), (5.5, 2, 2, 100), (10, 1, 1, 1)], (0.0, 10.0))
    assert thresholds(trace, 0.0) == (1.0, 1.0)
    out = simulate(trace, best_fit, exhausted_quantile=0.0)
    assert out.placements == (0, 1, 0, 0)
    assert out.stranded_cpu_pct == pytest.approx(22.5) and out.stranded_mem_pct == pytest.approx(18.75)
    assert out.stranded_pct == pytest.approx(20.625)
    assert out.pending_pct == pytest.approx(0.9375) and out.waited == 1 and out.unplaced == 0
    assert out.wasted_pct() == pytest.approx(21.5625) and out.wasted_pct(2.0) == pytest.approx(22.5)
    # allocated CPU 1, 5, 6 and memory 8, 10, 4 over [0,5), [5,6), [6,10): 34/80 and 66/160
    assert out.allocated_pct == pytest.approx((42.5 + 41.25) / 2)
    assert out.empty_machines_pct == pytest.approx(25.0)  # machine 1 idle for [0, 5)


def test_time_before_the_window_is_not_counted_and_a_task_can_wait_to_the_end():
    # measured from t=5 only; task 2 (5 cores) never fits and waits from 5.5 to the end, while task 3,
    # arriving later and smaller, passes it
    trace = _trace([(0, 1, 8, 100), (5, 4, 2, 100), (5.5, 5, 2, 100), (10, 1, 1, 1)], (5.0, 10.0),
                   capacity=((4.0, 8.0), (8.0, 8.0)))
    out = simulate(trace, best_fit, exhausted_quantile=0.0)
    assert out.placements == (0, 1, -1, 1) and out.waited == 1 and out.unplaced == 1
    # over [5, 10): machine 0 strands 3 cores; machine 1 (4 cores, 6 GiB free) strands nothing
    assert out.stranded_cpu_pct == pytest.approx(100 * 3 * 5 / (12 * 5)) and out.stranded_mem_pct == 0.0
    assert out.pending_pct == pytest.approx((100 * 5 * 4.5 / 60 + 100 * 2 * 4.5 / 80) / 2)


def test_stranded_counts_the_free_capacity_of_exhausted_machines():
    free = np.array([[3.0, 0.5], [0.0, 6.0], [2.0, 2.0], [0.5, 0.5]])
    assert stranded(free, (1.0, 1.0)) == (3.5, 6.5)  # rows 0 and 3 are out of memory, rows 1 and 3 out of CPU


def test_each_reference_rule_picks_the_machine_it_describes():
    task = {"cpu": 2.0, "mem": 4.0}
    machines = [[8.0, 8.0, 32.0, 128.0],   # left: 6/32 + 4/128 = 0.219
                [3.0, 100.0, 32.0, 128.0],  # left: 1/32 + 96/128 = 0.781
                [4.0, 6.0, 32.0, 128.0],   # left: 2/32 + 2/128 = 0.078 (the tightest)
                [60.0, 120.0, 64.0, 128.0]]  # left: 58/64 + 116/128 = 1.81 (the loosest)
    assert int(np.argmax(first_fit(task, machines))) == 0
    assert int(np.argmax(best_fit(task, machines))) == 2
    assert int(np.argmax(worst_fit(task, machines))) == 3
    # alignment 2/32 * free_cpu/32 + 4/128 * free_mem/128: 0.0195, 0.0277, 0.0090, 0.0879 (in 64 cores: 2/64 * 60/64)
    assert int(np.argmax(dot_product(task, machines))) == 3
    assert int(np.argmax(dot_product(task, machines[:3]))) == 1
    # AlphaEvolve's score: shares of free CPU and memory asked (a, b) -> -(a + b + a/b + b/a); the balanced
    # and roomy machine 3 (a = 2/60, b = 4/120, a/b = 1) wins, the lopsided machine 1 (a/b = 17) loses
    scores = alphaevolve(task, machines)
    assert int(np.argmax(scores)) == 3 and int(np.argmin(scores)) == 1
    assert scores[3] == pytest.approx(-(2 / 60 + 4 / 120 + 2))


def test_the_reference_table_on_train(evaluator):
    rows = {row["method"]: row for row in evaluator.references("train")}
    assert set(rows) == set(RULES)
    for row in rows.values():
        assert row["wasted %"] == pytest.approx(row["stranded %"] + row["pending %"])
        assert 0 <= row["stranded %"] < 10 and 0 <= row["pending %"] < 10
    # spreading strands the least but leaves large tasks waiting; best fit keeps machines empty for them
    assert rows["worst fit"]["stranded %"] < rows["best fit"]["stranded %"]
    assert rows["worst fit"]["pending %"] > rows["best fit"]["pending %"]
    assert rows["worst fit"]["empty machines %"] == 0.0 < rows["best fit"]["empty machines %"]
    assert rows["best fit"]["vs best fit (points)"] == 0.0
    classic = ("first fit", "best fit", "worst fit", "dot product (Tetris)")
    assert min(classic, key=lambda m: rows[m]["wasted %"]) == "best fit"
    # the score AlphaEvolve found for Borg keeps machines balanced: it strands almost nothing
    published = rows["AlphaEvolve's Borg score"]
    assert published["stranded %"] < 0.5 * min(rows[m]["stranded %"] for m in classic)
    assert published["wasted %"] < rows["best fit"]["wasted %"]


# -- candidates through the sandbox -------------------------------------------------------------------

def test_the_initial_program_is_valid_and_scores_what_best_fit_scores(initial_result, evaluator):
    result = initial_result
    assert result.valid, result.feedback
    best = next(r for r in evaluator.references("train") if r["method"] == "best fit")
    assert result.score == pytest.approx(-best["wasted %"], abs=1e-12)
    assert result.metrics["gain_over_best_fit"] == pytest.approx(0.0, abs=1e-12)
    assert result.metrics["stranded_pct"] == pytest.approx(best["stranded %"], abs=1e-12)
    assert result.metrics["traces"] == 4 and 0 < result.features["empty_machines_pct"] < 100
    assert "train:" in result.feedback and "stranded" in result.feedback


@pytest.mark.parametrize("body, reason", [
    ("return [0.0] * (len(machines) - 1)", "scores for"),
    ("return [float('nan')] * len(machines)", "non-finite"),
    ("raise ValueError('no machine for you')", "no machine for you"),
    ("return 0.0", "not a list"),
    ("return [None] * len(machines)", "not a number"),
    ("return ['1'] * len(machines)", "not a number"),
])
def test_broken_or_hostile_candidates_are_invalid_with_a_reason(problem, evaluator, sandbox, body, reason):
    source = f"def score(task, machines):\n    {body}\n"
    result = evaluate_program(evaluator, sandbox, source, problem.limits)
    assert not result.valid and not result.evaluator_error
    assert reason in result.feedback and result.stage == "smoke"


def test_a_hanging_or_slow_candidate_is_invalid(problem, sandbox):
    hang = "import time\ndef score(task, machines):\n    time.sleep(60)\n    return [0.0] * len(machines)\n"
    hung = evaluate_program(load_evaluator(problem, call_timeout=0.3), sandbox, hang, problem.limits)
    assert not hung.valid and hung.stage == "smoke" and "timed out" in hung.feedback
    assert hung.seconds < 20  # killed after 0.3 s, not after 60
    slow = ("import time\ndef score(task, machines):\n    spent = time.thread_time()\n"
            "    while time.thread_time() - spent < 0.03:\n        pass\n    return [0.0] * len(machines)\n")
    result = evaluate_program(load_evaluator(problem, max_ms_per_task=0.1), sandbox, slow, problem.limits)
    assert not result.valid and "of CPU time, over the budget" in result.feedback, result.feedback


def test_first_fit_as_a_candidate_scores_what_the_reference_scores(problem, evaluator, sandbox):
    """Bit for bit, through the batched calls; with the cascade, first fit is held back after the quick trace,
    more than `quick_margin` points worse than best fit there."""
    source = "def score(task, machines):\n    return [-float(k) for k in range(len(machines))]\n"
    result = evaluate_program(load_evaluator(problem, quick_margin=None), sandbox, source, problem.limits)
    first = next(r for r in evaluator.references("train") if r["method"] == "first fit")
    assert result.valid and result.stage == "train" and result.score == -first["wasted %"]
    assert result.metrics["gain_over_best_fit"] < 0
    held = evaluate_program(evaluator, sandbox, source, problem.limits)
    assert held.valid and held.stage == "quick" and held.metrics["traces"] == 1
    assert held.score == -summarise([simulate(evaluator.quick_set[0], first_fit)], 1.0)["wasted_pct"]
    assert -held.score > evaluator.quick_bar and "held the program back" in held.feedback


def test_a_better_heuristic_scores_better_on_train_and_validation(problem, evaluator, sandbox, initial,
                                                                  initial_result):
    tuned = initial.replace("BALANCE_WEIGHT = 0.0", "BALANCE_WEIGHT = 3.0")
    assert tuned != initial
    better = evaluate_program(evaluator, sandbox, tuned, problem.limits)
    assert better.valid and better.score > initial_result.score + 0.5
    assert better.metrics["stranded_pct"] < initial_result.metrics["stranded_pct"]
    seed_val = evaluate_held_out(evaluator, sandbox, initial, problem.limits, "validate")
    tuned_val = evaluate_held_out(evaluator, sandbox, tuned, problem.limits, "validate")
    assert seed_val.valid and tuned_val.valid and tuned_val.score > seed_val.score
    assert "val:" in seed_val.feedback and seed_val.metrics["traces"] == 4
    assert seed_val.score != initial_result.score


def test_the_test_split_is_scored_only_through_its_hook(problem, sandbox, initial):
    small = load_evaluator(problem, test=1, tasks=400)
    result = evaluate_held_out(small, sandbox, initial, problem.limits, "test")
    assert result.valid and result.metrics["traces"] == 1 and result.feedback.startswith("test:")
