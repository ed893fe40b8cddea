"""Evaluator helpers for many calls: replies checked strictly, time charged in the candidate's CPU."""

from __future__ import annotations

import pytest

from evaluators import CallBudget, OverBudget, check_numbers
from sandboxes import ProcessSandbox, SandboxLimits

CANDIDATE = """
import time
def spin(seconds):
    spent = time.thread_time()
    while time.thread_time() - spent < seconds:
        pass
    return [1.0]
def nap(seconds):
    time.sleep(seconds)
    return [1.0]
"""


def test_replies_are_checked_strictly():
    assert check_numbers([1, 2.5, -3], 3, "priorities") is None
    assert "not a list" in check_numbers((1, 2), 2, "priorities")
    assert "returned 2 priorities for 3" in check_numbers([1, 2], 3, "priorities")
    assert "not a number" in check_numbers([1, True], 2, "priorities")
    assert "not a number" in check_numbers([1, "2"], 2, "priorities")
    assert "not a number" in check_numbers([1, None], 2, "priorities")
    assert "not a finite number" in check_numbers([1, float("nan")], 2, "priorities")
    assert "not a finite number" in check_numbers([float("inf"), 1], 2, "priorities")
    assert "not a finite number" in check_numbers([1, -10 ** 400], 2, "priorities")  # beyond any float
    assert check_numbers([1, 10 ** 300], 2, "priorities") is None


def test_the_budget_charges_cpu_not_waiting():
    sandbox = ProcessSandbox()
    try:
        with sandbox.session(CANDIDATE, SandboxLimits(call_timeout=20, wall_seconds=60)) as session:
            budget = CallBudget(session, seconds=0.5)
            assert budget.clock == "CPU"
            for _ in range(4):
                budget.call("nap", 0.3)  # 1.2 s of waiting: not the candidate's computing
            assert budget.spent < 0.5
            with pytest.raises(OverBudget, match=r"of CPU time, over the budget of 0\.50 s"):
                for _ in range(10):
                    budget.call("spin", 0.1)
            assert 0.5 < budget.spent < 1.5
    finally:
        sandbox.close()
