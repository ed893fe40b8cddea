"""circle_packing's only limit is CPU time (import included), measured outside the sandbox: a sleeper is
not refused for the clock, a computer is refused for its CPU, whatever the machine's load."""

from __future__ import annotations

import pytest

from evaluators import evaluate_program
from problems.circle_packing.evaluator import CirclePacking
from sandboxes import ProcessSandbox, SandboxLimits

LIMITS = SandboxLimits(wall_seconds=600, call_timeout=20, cpu_seconds=30, memory_mb=1024)
GRID = """
import time
def burn(seconds):
    spent = time.process_time()
    while time.process_time() - spent < seconds:
        pass
def grid(n):
    return [[0.1 + 0.15 * (k % 6), 0.1 + 0.15 * (k // 6), 0.05] for k in range(n)]
"""


@pytest.fixture(scope="module")
def sandbox():
    made = ProcessSandbox()
    yield made
    made.close()


@pytest.mark.parametrize("program, verdict", [
    ("def solve(n):\n    return grid(n)\n", "valid"),
    ("def solve(n):\n    time.sleep(1.5)\n    return grid(n)\n", "valid"),  # five times the budget, asleep
    ("def solve(n):\n    burn(1.2)\n    return grid(n)\n", "invalid"),  # four times the budget, computing
    ("burn(1.2)\ndef solve(n):\n    return grid(n)\n", "invalid"),  # the same at import
])
def test_the_budget_is_cpu_time_import_included(sandbox, program, verdict):
    result = evaluate_program(CirclePacking(cpu_seconds=0.3), sandbox, GRID + program, LIMITS)
    if verdict == "valid":
        assert result.valid and result.score == pytest.approx(1.3), result.feedback
    else:
        assert not result.valid and "s of CPU time, over the budget of 0.30 s" in result.feedback, result.feedback


def test_a_sleeper_is_killed_at_the_multiple():
    with pytest.raises(ValueError, match=r"kill_multiple=0\.5"):
        CirclePacking(kill_multiple=0.5)
    sandbox = ProcessSandbox()
    try:
        evaluator = CirclePacking(cpu_seconds=0.05, kill_multiple=20)  # killed after 1 s of wall-clock time
        result = evaluate_program(evaluator, sandbox, GRID + "def solve(n):\n    time.sleep(3600)\n", LIMITS)
        assert not result.valid and "timed out (timeout=1s)" in result.feedback, result.feedback
    finally:
        sandbox.close()
