"""Every built-in problem's MAP-Elites descriptors tell programs apart: on a handful of distinct programs
(the initial one and variants of its constants) they take distinct values, the same at a second scoring,
and spread over several cells of the problem's own grid."""

from __future__ import annotations

import pytest

from evaluators import evaluate_program
from evolve.config import DatabaseConfig
from evolve.evaluation.sandboxing import make_sandbox
from evolve.population import IslandPopulation, Member
from evolve.problems import get_problem, load_evaluator, read_initial_program
from tests.problems.test_determinism import BUILT_IN, RUN_SEED

# fewer instances where an evaluation takes long: each variant still behaves apart on them
SMALLER = {"circle_packing": {}, "warehouse_tsp": {"train_size": 20}, "bin_packing": {"train": {"or120": 2}},
           "cluster_scheduling": {"train": 1, "tasks": 300}}

# (old, new) replacements in the initial program, one variant each: behaviours a search would try
VARIANTS = {
    "circle_packing": [("steps=300", "steps=60"), ("(8, 0.22, 0.0), (17, 0.41, 0.2)", "(6, 0.2, 0.0), (19, 0.4, 0.1)"),
                       ("r = np.full(n, 0.06)", "r = np.linspace(0.01, 0.12, n)"), ("growth=1.02", "growth=1.05")],
    "warehouse_tsp": [("AISLE_CHANGE_PENALTY = 0.0", "AISLE_CHANGE_PENALTY = 8.0"),
                      ("RETURN_PULL = 0.0", "RETURN_PULL = 1.5"), ("RETURN_PULL = 0.0", "RETURN_PULL = -0.5"),
                      ("ISOLATION_WEIGHT = 0.0", "ISOLATION_WEIGHT = 0.5")],
    "bin_packing": [("SLACK_WEIGHT = 1.0", "SLACK_WEIGHT = -1.0"), ("AWKWARD_PENALTY = 0.0", "AWKWARD_PENALTY = 0.5"),
                    ("NEW_BIN_PENALTY = 0.0", "NEW_BIN_PENALTY = -0.5"),
                    ("USEFUL_SLACK = 0.15", "USEFUL_SLACK = 0.4\nAWKWARD_PENALTY = 2.0")],
    "cluster_scheduling": [("CPU_WEIGHT = 1.0", "CPU_WEIGHT = -1.0"), ("BALANCE_WEIGHT = 0.0", "BALANCE_WEIGHT = 2.0"),
                           ("ALIGN_WEIGHT = 0.0", "ALIGN_WEIGHT = 3.0"), ("MEM_WEIGHT = 1.0", "MEM_WEIGHT = 0.0")],
}


def test_every_built_in_problem_has_variants():
    assert set(VARIANTS) == set(SMALLER) == set(BUILT_IN), "a new built-in problem: add it to VARIANTS and SMALLER"


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_descriptors_are_deterministic_and_spread(name):
    problem = get_problem(name)
    initial = read_initial_program(problem)
    programs = [initial]
    for old, new in VARIANTS[name]:
        assert old in initial, f"{name}'s initial program changed: update VARIANTS ({old!r} is gone)"
        programs.append(initial.replace(old, new, 1))
    sandbox = make_sandbox(None, problem)
    try:
        evaluator = load_evaluator(problem, run_seed=RUN_SEED, **SMALLER[name])
        results = [evaluate_program(evaluator, sandbox, code, problem.limits, problem.stage_limits)
                   for code in programs]
        again = evaluate_program(load_evaluator(problem, run_seed=RUN_SEED, **SMALLER[name]), sandbox, programs[-1],
                                 problem.limits, problem.stage_limits)
    finally:
        sandbox.close()
    assert all(r.valid for r in results), [r.feedback for r in results if not r.valid]
    assert again.features == results[-1].features  # bit for bit: a cell must not change between scorings
    dims = problem.features
    assert dims and all(d.adaptive for d in dims)
    for dim in dims:
        if dim.name != "code_length":
            values = [r.features[dim.name] for r in results]
            assert len(set(values)) >= 4, f"{dim.name} hardly tells programs apart: {values}"
    population = IslandPopulation(DatabaseConfig(islands=1), dims, seed=0)
    for pid, (code, result) in enumerate(zip(programs, results)):
        population.add(Member(pid, pid, result.score, 0, None, str(pid), len(code), result.features))
    assert len(population.grids()[0]) >= 4  # of 5 programs
