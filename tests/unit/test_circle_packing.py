from __future__ import annotations

import math

import pytest

from evaluators import evaluate_program
from evolve.problems import load_evaluator, read_initial_program
from sandboxes import ProcessSandbox


@pytest.fixture(scope="module")
def evaluator(circle_problem):
    return load_evaluator(circle_problem)


def grid(n=26, k=6):
    """n circles of radius 1/(2k) on a k-by-k grid: feasible, touching exactly."""
    r = 1 / (2 * k)
    return [[r + 2 * r * (i % k), r + 2 * r * (i // k), r] for i in range(n)]


def test_touching_circles_are_feasible(evaluator):
    assert evaluator.check(grid()) is None


def test_overlap_beyond_tolerance_is_invalid(evaluator):
    packing = grid()
    packing[1][0] -= 2e-12  # moves circle 1 into circle 0 by 2e-12
    assert "overlap" in evaluator.check(packing)
    packing[1][0] += 1.5e-12  # 5e-13: within tolerance
    assert evaluator.check(packing) is None


def test_leaving_the_square_is_invalid(evaluator):
    packing = grid()
    packing[0][0] = packing[0][2] - 2e-12
    assert "leaves the unit square" in evaluator.check(packing)


@pytest.mark.parametrize("bad, reason", [
    ("not a list", "must return a list"),
    ([[0.5, 0.5, 0.1]] * 25, "got 25 items"),
    ([[0.5, 0.5]] * 26, "not [x, y, r]"),
    ([[0.5, "0.5", 0.1]] * 26, "not [x, y, r]"),
    ([[0.5, 0.5, True]] * 26, "not [x, y, r]"),
])
def test_malformed_answers_are_invalid(evaluator, bad, reason):
    assert reason in evaluator.check(bad)


def test_negative_radius_is_invalid(evaluator):
    packing = grid()
    packing[3][2] = -0.01
    assert "negative radius" in evaluator.check(packing)


def test_initial_program_is_valid_and_well_below_the_record(evaluator, circle_problem):
    result = evaluate_program(evaluator, ProcessSandbox(), read_initial_program(circle_problem),
                              circle_problem.limits)
    assert result.valid, result.feedback
    assert 2.3 < result.score < 2.635
    assert math.isclose(result.metrics["sum_radii"], result.score)
    assert 0 <= result.features["radius_spread"] <= 1
