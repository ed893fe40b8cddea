"""bin_packing: seeded instances, the packer's semantics, the reference rules, and candidates through the sandbox."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from evaluators import evaluate_held_out, evaluate_program
from evolve.problems import load_evaluator
from problems.bin_packing.heuristics import (
    ONLINE_RULES,
    best_fit,
    first_fit,
    first_fit_decreasing,
    worst_fit,
)
from problems.bin_packing.instances import (
    GeneratorConfig,
    Instance,
    build_splits,
    generate,
    parse_group,
)
from problems.bin_packing.packing import online_pack
from problems.bin_packing.scoring import summarise

PROBLEM = "bin_packing"


# -- instances --------------------------------------------------------------------------------------

def test_instances_are_seeded_sized_and_drawn_from_the_right_distributions():
    cfg = GeneratorConfig()
    splits = build_splits(cfg)
    build_splits.cache_clear()
    again = build_splits(GeneratorConfig())
    assert splits is not again
    assert {s: [i.items for i in v] for s, v in splits.items()} == {s: [i.items for i in v] for s, v in again.items()}
    assert [len(i.items) for i in splits["train"]] == [120] * 4 + [250] * 4 + [500] * 4 + [1000] * 4
    assert len(splits["test"]) == 95
    other = build_splits(GeneratorConfig(seed=7))
    assert [i.items for i in other["train"]] != [i.items for i in splits["train"]]
    train_items = {i.items for i in splits["train"]}
    assert not train_items & {i.items for i in splits["val"]}  # splits come from different streams
    for inst in splits["test"]:
        items = np.array(inst.items)
        if inst.group.startswith("or"):
            assert inst.capacity == 150 and items.min() >= 20 and items.max() <= 100
        else:
            assert inst.capacity == 100 and items.min() >= 1 and items.max() <= 100
    weibull = np.concatenate([i.items for i in splits["test"] if i.group == "weibull5000"])
    assert abs(weibull.mean() - 45 * math.gamma(1 + 1 / 3)) < 0.5  # Weibull(3, 45) has mean 40.2
    uniform = np.concatenate([i.items for i in splits["test"] if i.group == "or1000"])
    assert abs(uniform.mean() - 60) < 1.0 and set(np.unique(uniform)) == set(range(20, 101))
    # an instance does not depend on which other groups a split holds
    assert generate(2026, "train", "or250", 4)[3].items == splits["train"][7].items


def test_group_names_and_counts_are_checked():
    assert parse_group("weibull5000") == ("weibull", 5000)
    for bad in ("or", "tsp50", "or-5", "OR120", "weibull0"):
        with pytest.raises(ValueError, match="is not <family><items>"):
            parse_group(bad)
    with pytest.raises(ValueError, match="at least one instance"):
        GeneratorConfig(train=(("or120", 0),))


def test_the_l1_bound_rounds_up():
    assert Instance("a", "or3", 10, (5, 5)).l1_bound == 1
    assert Instance("b", "or3", 10, (5, 5, 1)).l1_bound == 2


# -- the packer and the reference rules ---------------------------------------------------------------

def test_a_hand_checked_case_separates_the_rules():
    """Capacity 10, items 5 6 4 5: best fit puts the 4 in the 6's bin (slack 0) and keeps room for the last 5."""
    items = (5, 6, 4, 5)
    bf = online_pack(items, 10, best_fit)
    assert (bf.bins, bf.assignment, bf.remaining) == (2, (0, 1, 1, 0), (0, 0))
    ff = online_pack(items, 10, first_fit)
    assert (ff.bins, ff.assignment, ff.remaining) == (3, (0, 1, 0, 2), (1, 4, 5))
    wf = online_pack(items, 10, worst_fit)
    assert (wf.bins, wf.assignment) == (3, (0, 1, 0, 2))
    assert ff.best_fit_agreement == 3 and bf.best_fit_agreement == 4  # first fit differs on the 4 only
    ffd = first_fit_decreasing(items, 10)  # 6 5 5 4
    assert (ffd.bins, ffd.assignment) == (2, (0, 1, 1, 0))


def _naive(items, capacity, rule):
    """The textbook rules, written out with plain loops (new bin only when nothing fits)."""
    bins, assignment = [], []
    for item in items:
        fits = [b for b, free in enumerate(bins) if free >= item]
        if not fits:
            bins.append(capacity - item)
            assignment.append(len(bins) - 1)
            continue
        if rule == "first fit":
            b = fits[0]
        elif rule == "best fit":
            b = min(fits, key=lambda k: (bins[k], k))
        else:
            b = min(fits, key=lambda k: (-bins[k], k))
        bins[b] -= item
        assignment.append(b)
    return tuple(assignment)


def test_the_packer_with_each_rule_matches_the_textbook_rule():
    rng = np.random.default_rng(0)
    for trial in range(60):
        capacity = int(rng.integers(5, 40))
        items = tuple(int(x) for x in rng.integers(1, capacity + 1, int(rng.integers(1, 60))))
        for name, rule in ONLINE_RULES.items():
            assert online_pack(items, capacity, rule).assignment == _naive(items, capacity, name), (trial, name)


def _optimum(items, capacity):
    """The fewest bins, by trying every assignment of items to bins (tiny instances only)."""
    for k in range(1, len(items) + 1):
        for labels in itertools.product(range(k), repeat=len(items)):
            loads = [0] * k
            for item, b in zip(items, labels):
                loads[b] += item
            if max(loads) <= capacity:
                return k
    raise AssertionError("unreachable: one bin per item always fits")


def test_no_rule_beats_the_optimum_and_the_optimum_never_beats_l1():
    rng = np.random.default_rng(1)
    for _ in range(40):
        capacity = 10
        items = tuple(int(x) for x in rng.integers(1, 11, int(rng.integers(2, 8))))
        inst = Instance("tiny", "or0", capacity, items)
        optimum = _optimum(items, capacity)
        assert inst.l1_bound <= optimum
        for rule in ONLINE_RULES.values():
            assert online_pack(items, capacity, rule).bins >= optimum
        assert first_fit_decreasing(items, capacity).bins >= optimum


def test_every_packing_of_every_training_instance_is_feasible_and_above_l1(evaluator):
    for inst in evaluator.splits["train"]:
        for rule in ONLINE_RULES.values():
            packing = online_pack(inst.items, inst.capacity, rule)
            loads = np.bincount(packing.assignment, weights=inst.items, minlength=packing.bins)
            assert (loads <= inst.capacity).all()
            assert np.array_equal(inst.capacity - loads, packing.remaining)
            assert packing.bins >= inst.l1_bound


def test_the_reference_table_orders_the_rules_and_never_goes_below_l1(evaluator):
    rows = {row["method"]: row for row in evaluator.references("train")}
    assert set(rows) == {"first fit", "best fit", "worst fit", "first fit decreasing (offline)", "L1 lower bound"}
    assert rows["best fit"]["vs best fit (points)"] == 0.0
    order = ["first fit decreasing (offline)", "best fit", "first fit", "worst fit"]
    excess = [rows[m]["excess %"] for m in order]
    assert 0 < excess[0] < excess[1] < excess[2] < excess[3]
    assert all(rows[m]["bins"] > rows["L1 lower bound"]["bins"] for m in order)
    assert {"or120 %", "or250 %", "or500 %", "weibull1000 %"} <= set(rows["best fit"])


# -- candidates through the sandbox -------------------------------------------------------------------

def test_the_initial_program_is_valid_and_scores_what_best_fit_scores(initial_result, evaluator):
    result = initial_result
    assert result.valid, result.feedback
    best = next(r for r in evaluator.references("train") if r["method"] == "best fit")
    assert result.score == pytest.approx(-best["pooled %"], abs=1e-12)  # every bin weighs the same
    m = result.metrics
    assert result.score == pytest.approx(-100 * (m["bins"] - m["l1_bound"]) / m["l1_bound"], abs=1e-12)
    assert m["excess_pct"] == pytest.approx(best["excess %"], abs=1e-12)  # the mean per instance, kept
    assert result.metrics["gain_over_best_fit"] == pytest.approx(0.0, abs=1e-12)
    assert result.metrics["best_fit_agreement_pct"] == 100.0 and result.metrics["voluntary_new_bin_pct"] == 0.0
    assert result.metrics["bins"] == best["bins"] and result.metrics["instances"] == 16
    assert result.features == {"best_fit_agreement_pct": 100.0}
    assert "train:" in result.feedback and "best fit" in result.feedback


@pytest.mark.parametrize("body, reason", [
    ("return [0.0] * (len(bins) + 1)", "priorities for"),
    ("return [float('nan')] * len(bins)", "non-finite"),
    ("raise RuntimeError('broken on purpose')", "broken on purpose"),
    ("return 'tightest'", "not a list"),
    ("return [True] * len(bins)", "not a number"),
    ("return {'0': 1.0}", "not a list"),
    ("return None", "not a list"),
    ("return [[1.0]] * len(bins)", "not a number"),
])
def test_broken_or_hostile_candidates_are_invalid_with_a_reason(problem, evaluator, sandbox, body, reason):
    source = f"def priority(item, bins):\n    {body}\n"
    result = evaluate_program(evaluator, sandbox, source, problem.limits)
    assert not result.valid and not result.evaluator_error
    assert reason in result.feedback and result.stage == "smoke"


def test_a_missing_entrypoint_and_a_slow_candidate_are_invalid(problem, evaluator, sandbox):
    missing = evaluate_program(evaluator, sandbox, "def prio(item, bins):\n    return bins\n", problem.limits)
    assert not missing.valid and "no function 'priority'" in missing.feedback
    hang = "import time\ndef priority(item, bins):\n    time.sleep(60)\n    return [0.0] * len(bins)\n"
    hung = evaluate_program(load_evaluator(problem, call_timeout=0.3), sandbox, hang, problem.limits)
    assert not hung.valid and hung.stage == "smoke" and "timed out" in hung.feedback
    assert hung.seconds < 20  # killed after 0.3 s, not after 60
    slow = ("import time\ndef priority(item, bins):\n    spent = time.thread_time()\n"
            "    while time.thread_time() - spent < 0.03:\n        pass\n    return [-b for b in bins]\n")
    result = evaluate_program(load_evaluator(problem, max_ms_per_item=0.1), sandbox, slow, problem.limits)
    assert not result.valid and "of CPU time, over the budget of 2.00 s" in result.feedback, result.feedback


def test_a_candidate_that_always_opens_a_new_bin_is_valid_and_scores_badly(problem, evaluator, sandbox):
    """It is far worse than best fit on the quick instances, so the cascade stops there; without the quick
    stage it is packed on every training instance."""
    source = "def priority(item, bins):\n    return [0.0] * (len(bins) - 1) + [1.0]\n"

    def one_bin_each(instances):  # pooled excess of a bin per item
        l1 = sum(i.l1_bound for i in instances)
        return -100 * (sum(len(i.items) for i in instances) - l1) / l1

    held = evaluate_program(evaluator, sandbox, source, problem.limits)
    assert held.valid and held.stage == "quick" and "train" not in held.stage_seconds
    assert held.score == pytest.approx(one_bin_each(evaluator.quick_set)) and held.metrics["instances"] == 4
    assert "held the program back" in held.feedback
    result = evaluate_program(load_evaluator(problem, quick_margin=None), sandbox, source, problem.limits)
    assert result.valid and result.stage == "train"
    train = evaluator.splits["train"]
    assert result.score == pytest.approx(one_bin_each(train))
    expected = np.mean([100 * (len(i.items) - i.l1_bound) / i.l1_bound for i in train])
    assert result.metrics["excess_pct"] == pytest.approx(expected)
    assert result.metrics["voluntary_new_bin_pct"] > 50


def test_a_better_heuristic_scores_better_on_train_and_validation(problem, evaluator, sandbox, initial,
                                                                  initial_result):
    tuned = initial.replace("AWKWARD_PENALTY = 0.0", "AWKWARD_PENALTY = 1.0").replace(
        "NEAR_PERFECT = 0.02", "NEAR_PERFECT = 0.05")
    assert tuned != initial
    better = evaluate_program(evaluator, sandbox, tuned, problem.limits)
    assert better.valid and better.score > initial_result.score + 0.5
    assert better.metrics["gain_over_best_fit"] > 0.5 and better.metrics["best_fit_agreement_pct"] < 100
    seed_val = evaluate_held_out(evaluator, sandbox, initial, problem.limits, "validate")
    tuned_val = evaluate_held_out(evaluator, sandbox, tuned, problem.limits, "validate")
    assert seed_val.valid and tuned_val.valid and tuned_val.score > seed_val.score
    assert "val:" in seed_val.feedback and seed_val.metrics["instances"] == 16
    assert seed_val.score != initial_result.score


def test_the_test_split_is_scored_only_through_its_hook(problem, sandbox, initial):
    small = load_evaluator(problem, test={"or120": 2, "weibull500": 1})
    result = evaluate_held_out(small, sandbox, initial, problem.limits, "test")
    assert result.valid and result.metrics["instances"] == 3 and result.feedback.startswith("test:")
    assert set(result.metrics) >= {"excess_pct_or120", "excess_pct_weibull500"}


# -- the batched path and the cascade ------------------------------------------------------------------

SAME_AS_ONE_CALL_EACH = [
    "import numpy as np\ndef priority(item, bins):\n    return -np.asarray(bins, dtype=float)\n",  # best fit
    "def priority(item, bins):\n    return [-k for k in range(len(bins))]\n",  # first fit
    "def priority(item, bins):\n    return [b - 0.01 * (b == max(bins)) for b in bins]\n",  # worst fit, no new bin
    "import math\ndef priority(item, bins):\n    return [math.sin(item * b) for b in bins]\n",  # arbitrary
]


@pytest.mark.parametrize("source", SAME_AS_ONE_CALL_EACH)
def test_packing_instances_side_by_side_scores_what_one_call_per_item_scores(problem, sandbox, source):
    """The score of the batched path, bit for bit, against the packer driven by one `call` per item (on a
    smaller training split of instances of unequal lengths: one call per item is slow)."""
    evaluator = load_evaluator(problem, quick_margin=None, train={"or120": 3, "weibull250": 2, "or500": 1})
    result = evaluate_program(evaluator, sandbox, source, problem.limits)
    train = evaluator.splits["train"]
    with sandbox.session(source, problem.limits) as session:
        packings = [online_pack(inst.items, inst.capacity, lambda item, bins: session.call("priority", item, bins))
                    for inst in train]
    assert result.valid and result.stage == "train"
    assert result.score == -summarise(train, [p.bins for p in packings]).pooled_excess_pct
    two_lanes = load_evaluator(problem, quick_margin=None, train={"or120": 3, "weibull250": 2, "or500": 1}, lanes=2)
    overlapped = evaluate_program(two_lanes, sandbox, source, problem.limits)
    assert overlapped.score == result.score and overlapped.features == result.features
    items = sum(len(inst.items) for inst in train)
    assert result.metrics["best_fit_agreement_pct"] == 100 * sum(p.best_fit_agreement for p in packings) / items


def test_the_quick_stage_is_not_packed_twice_and_changes_no_score(problem, evaluator, sandbox, initial, initial_result):
    assert [inst.name for inst in evaluator.quick_set] == ["train-or120-00", "train-or250-00", "train-or500-00",
                                                           "train-weibull1000-00"]
    assert initial_result.stage == "train" and set(initial_result.stage_seconds) >= {"smoke", "quick", "train"}
    plain = evaluate_program(load_evaluator(problem, quick_margin=None), sandbox, initial, problem.limits)
    assert "quick" not in plain.stage_seconds
    assert plain.score == initial_result.score and plain.features == initial_result.features
    drop = {"ms_per_item", "smoke.ms_per_item", "quick.ms_per_item"}
    assert {k: v for k, v in plain.metrics.items() if k not in drop and not k.startswith("quick.")} == \
        {k: v for k, v in initial_result.metrics.items() if k not in drop and not k.startswith("quick.")}
    calls = ("import numpy as np\ncalls = [0]\ndef priority(item, bins):\n    calls[0] += 1\n"
             "    return -np.asarray(bins, dtype=float)\ndef count():\n    return calls[0]\n")
    with sandbox.session(calls, problem.limits) as session:
        for stage in evaluator.stages():
            assert stage.run(session).valid
        items = sum(len(i.items) for i in evaluator.splits["train"]) + len(evaluator.smoke_set[0].items)
        assert session.call("count") == items  # smoke, then every training item once: quick's are not redone


def test_one_slow_item_in_a_batch_times_out_on_its_own_and_names_its_instance(problem, sandbox):
    """A hang on one item of the 16 packed side by side ends at that call's timeout (0.3 s), as it would alone."""
    hang = ("import time\ndef priority(item, bins):\n    if len(bins) > 12:\n        time.sleep(60)\n"
            "    return [-b for b in bins]\n")
    hung = evaluate_program(load_evaluator(problem, call_timeout=0.3, quick_margin=None), sandbox, hang,
                            problem.limits)
    assert not hung.valid and hung.failure == "timeout" and hung.stage == "train"
    assert "timed out (timeout=0.3s) in call" in hung.feedback and "train instance train-" in hung.feedback
