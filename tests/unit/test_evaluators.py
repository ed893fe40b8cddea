from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evaluators import Evaluator, Score, Stage, evaluate_program
from sandboxes import ProcessSandbox, SandboxLimits

LIMITS = SandboxLimits(call_timeout=3, wall_seconds=10)


class Cascade(Evaluator):
    entrypoint = "g"

    def __init__(self):
        self.calls = []

    def stages(self):
        return [Stage("smoke", self.smoke, gate=lambda s: s.value > 0), Stage("full", self.full)]

    def smoke(self, candidate):
        self.calls.append("smoke")
        return Score(value=candidate.call("g", 1), metrics={"x": 1})

    def full(self, candidate):
        self.calls.append("full")
        values = candidate.call_many("g", [[i] for i in range(5)])
        return Score(value=float(sum(values)), metrics={"x": 2}, features={"f": 0.5}, feedback="ok")


@pytest.fixture(scope="module")
def sandbox():
    return ProcessSandbox()


def test_cascade_runs_every_stage_and_merges_metrics(sandbox):
    ev = Cascade()
    result = evaluate_program(ev, sandbox, "def g(i):\n    return i * 2\n", LIMITS)
    assert result.valid and result.score == 20.0 and result.stage == "full"
    assert result.metrics == {"smoke.x": 1, "x": 2} and result.features == {"f": 0.5}
    assert ev.calls == ["smoke", "full"] and result.seconds > 0


def test_a_closed_gate_stops_the_cascade(sandbox):
    ev = Cascade()
    result = evaluate_program(ev, sandbox, "def g(i):\n    return -1\n", LIMITS)
    assert ev.calls == ["smoke"] and result.stage == "smoke" and result.score == -1


def test_candidate_failures_become_invalid_scores_with_feedback(sandbox):
    result = evaluate_program(Cascade(), sandbox, "def g(i):\n    raise ValueError('nope')\n", LIMITS)
    assert not result.valid and result.score is None and "ValueError: nope" in result.feedback
    assert not result.evaluator_error
    result = evaluate_program(Cascade(), sandbox, "def g(:\n", LIMITS)
    assert not result.valid and "SyntaxError" in result.feedback and result.stage == "load"
    result = evaluate_program(Cascade(), sandbox, "import time\ndef g(i):\n    time.sleep(60)\n", LIMITS)
    assert not result.valid and "timed out" in result.feedback


def test_an_evaluator_bug_is_flagged_not_blamed_on_the_candidate(sandbox):
    class Broken(Evaluator):
        def evaluate(self, candidate):
            raise KeyError("oops")

    result = evaluate_program(Broken(), sandbox, "def solve():\n    return 1\n", LIMITS)
    assert not result.valid and result.evaluator_error and "KeyError" in result.feedback


def test_an_evaluator_bug_logged_where_nothing_listens_stays_off_the_terminal():
    # a campaign's controller runs evaluators too (local slots, reference lines): one that raises after its
    # slot was closed must not print its traceback on the user's terminal (it goes to campaign.log through
    # the slot, and nowhere when the slot is gone)
    script = r"""
from evaluators import Evaluator, evaluate_program
from sandboxes import ProcessSandbox, SandboxLimits

class Broken(Evaluator):
    def evaluate(self, candidate):
        raise KeyError("oops")

result = evaluate_program(Broken(), ProcessSandbox(), "def solve():\n    return 1\n", SandboxLimits(call_timeout=3))
print("evaluator_error" if result.evaluator_error else "scored")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0 and out.stdout.strip() == "evaluator_error", out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "oops" not in out.stderr, out.stderr[-2000:]


def test_scores_must_be_finite_plain_data(sandbox):
    class Nan(Evaluator):
        def evaluate(self, candidate):
            return Score(value=float("nan"))

    result = evaluate_program(Nan(), sandbox, "x = 1\n", LIMITS)
    assert not result.valid and result.evaluator_error and "finite" in result.feedback
    with pytest.raises(ValueError, match="features"):
        Score(value=1.0, features={"a": float("inf")}).checked()
    with pytest.raises(ValueError, match="metrics"):
        Score(value=1.0, metrics={"a": object()}).checked()


def test_evaluator_without_stages_or_evaluate_says_so(sandbox):
    class Empty(Evaluator):
        pass

    result = evaluate_program(Empty(), sandbox, "x = 1\n", LIMITS)
    assert result.evaluator_error and "must override evaluate" in result.feedback


def test_result_round_trips_as_plain_data(sandbox):
    result = evaluate_program(Cascade(), sandbox, "def g(i):\n    return i\n", LIMITS)
    assert type(result).from_dict(result.to_dict()) == result


def test_a_stage_with_its_own_limits_gets_its_own_session(sandbox):
    class TwoStages(Evaluator):
        def stages(self):
            return [Stage("quick", self.quick), Stage("long", self.long)]

        def quick(self, candidate):
            return Score(value=candidate.call("pid"))

        def long(self, candidate):
            return Score(value=candidate.call("pid"), metrics={"slow": candidate.call("slow")})

    source = "import os, time\ndef pid():\n    return os.getpid()\ndef slow():\n    time.sleep(1.5)\n    return 1\n"
    tight = SandboxLimits(call_timeout=1, wall_seconds=10)
    roomy = SandboxLimits(call_timeout=3, wall_seconds=10)
    shared = evaluate_program(TwoStages(), sandbox, source, tight)
    assert not shared.valid and "timed out" in shared.feedback  # one session, the tight limits
    own = evaluate_program(TwoStages(), sandbox, source, tight, {"long": roomy})
    assert own.valid and own.metrics["slow"] == 1


def test_results_time_each_stage_and_name_the_kind_of_failure(sandbox):
    valid = evaluate_program(Cascade(), sandbox, "def g(i):\n    return i * 2\n", LIMITS)
    assert set(valid.stage_seconds) == {"load", "smoke", "full"} and valid.failure == ""
    assert all(seconds > 0 for seconds in valid.stage_seconds.values())
    kinds = {code: evaluate_program(Cascade(), sandbox, code, LIMITS).failure for code in (
        "def g(i):\n    raise ValueError('nope')\n", "import time\ndef g(i):\n    time.sleep(60)\n",
        "import os\ndef g(i):\n    os._exit(3)\n", "def g(i):\n    return -1\n")}
    assert list(kinds.values()) == ["candidate_error", "timeout", "crash", ""]  # a closed gate is no failure

    class Rejecting(Evaluator):
        entrypoint = "g"

        def evaluate(self, candidate):
            return Score.invalid(f"wrong answer {candidate.call('g', 1)}")

    rejected = evaluate_program(Rejecting(), sandbox, "def g(i):\n    return i\n", LIMITS)
    assert not rejected.valid and rejected.failure == "rejected" and set(rejected.stage_seconds) == {"load", "evaluate"}
