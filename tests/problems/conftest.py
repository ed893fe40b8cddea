"""What every problem's tests share: the problem a test module names in `PROBLEM`, its evaluator, a
sandbox with the problem's view, and the initial program with its result."""

from __future__ import annotations

import pytest

from evaluators import evaluate_program
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import get_problem, load_evaluator, read_initial_program


@pytest.fixture(scope="module")
def problem(request):
    return get_problem(request.module.PROBLEM)


@pytest.fixture(scope="module")
def evaluator(problem):
    return load_evaluator(problem)


@pytest.fixture(scope="module")
def sandbox(problem):
    sandbox = make_sandbox(None, problem)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def initial(problem):
    return read_initial_program(problem)


@pytest.fixture(scope="module")
def initial_result(evaluator, sandbox, initial, problem):
    return evaluate_program(evaluator, sandbox, initial, problem.limits)
