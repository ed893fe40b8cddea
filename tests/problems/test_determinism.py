"""Every built-in problem scores the same program the same, bit for bit: in two evaluator instances, in two
processes with different hash seeds (the evaluator's `timing_metrics` aside: they time the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators import EvaluationResult, evaluate_program, first_difference
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import evaluator_class, get_problem, load_evaluator, read_initial_program

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = sorted(p.parent.name for p in (ROOT / "problems").glob("*/config.yaml"))
# fewer instances where an evaluation takes long: the evaluator's code paths are the same
SMALLER = {"circle_packing": {}, "warehouse_tsp": {},
           "bin_packing": {"train": {"or120": 2, "weibull1000": 1}}, "cluster_scheduling": {"train": 2, "tasks": 400}}
RUN_SEED = 11

SCORE_ELSEWHERE = """
import json, sys
from evaluators import evaluate_program
from evolve.problems import get_problem, load_evaluator, read_initial_program
from evolve.evaluation.sandboxing import make_sandbox
name, seed, params = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
problem = get_problem(name)
sandbox = make_sandbox(None, problem)
try:
    result = evaluate_program(load_evaluator(problem, run_seed=seed, **params), sandbox, read_initial_program(problem),
                              problem.limits, problem.stage_limits)
finally:
    sandbox.close()
print(json.dumps(result.to_dict()))
"""


def test_every_built_in_problem_is_covered():
    assert set(SMALLER) == set(BUILT_IN), "a new built-in problem: add it to SMALLER"


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_initial_program_scores_the_same_in_two_instances_and_two_processes(name):
    problem = get_problem(name)
    params = SMALLER[name]
    sandbox = make_sandbox(None, problem)
    try:
        first, second = (evaluate_program(load_evaluator(problem, run_seed=RUN_SEED, **params), sandbox,
                                          read_initial_program(problem), problem.limits, problem.stage_limits)
                         for _ in range(2))
    finally:
        sandbox.close()
    env = {**os.environ, "PYTHONHASHSEED": "4321", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCORE_ELSEWHERE, name, str(RUN_SEED), json.dumps(params)],
                         capture_output=True, text=True, env=env, timeout=600, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    elsewhere = EvaluationResult.from_dict(json.loads(out.stdout.strip().splitlines()[-1]))
    timing = evaluator_class(problem).timing_metrics
    assert first.valid and first.metrics, first.feedback
    assert first_difference(first, second, timing) is None
    assert first_difference(first, elsewhere, timing) is None
    assert first.score == elsewhere.score  # bit for bit
