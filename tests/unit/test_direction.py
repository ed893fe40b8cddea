"""`direction: minimize`: the engine maximises a negated value; the gate, the held-out hooks and users
see the natural one."""

from __future__ import annotations

from evaluators import Evaluator, Score, Stage, evaluate_held_out, evaluate_program
from evaluators.direction import natural, negated
from sandboxes import ProcessSandbox, SandboxLimits

LIMITS = SandboxLimits(call_timeout=5)
CODE = "def err(x):\n    return x\n"


class Error(Evaluator):
    """Score = the candidate's error (lower is better); the gate lets only errors under 5 through."""

    def stages(self):
        return [Stage("smoke", lambda c: Score(value=c.call("err", 3.0)), gate=lambda s: s.value < 5),
                Stage("full", lambda c: Score(value=c.call("err", 2.0), metrics={"error": 2.0}))]


class ErrorWithValidation(Error):
    def validate(self, candidate):
        return Score(value=candidate.call("err", 7.0))


def test_values_are_negated_for_the_engine_and_natural_for_people():
    sandbox = ProcessSandbox()
    result = evaluate_program(negated(Error()), sandbox, CODE, LIMITS)
    assert result.valid and result.stage == "full"  # the gate saw 3 (natural), not -3
    assert result.score == -2.0 and result.metrics["error"] == 2.0
    assert natural(result.score, "minimize") == 2.0 and natural(result.score, "maximize") == -2.0
    assert natural(None, "minimize") is None


def test_held_out_hooks_follow_the_inner_evaluator():
    sandbox = ProcessSandbox()
    assert evaluate_held_out(negated(Error()), sandbox, CODE, LIMITS) is None
    held = evaluate_held_out(negated(ErrorWithValidation()), sandbox, CODE, LIMITS)
    assert held.score == -7.0


def test_invalid_scores_stay_invalid():
    class Bad(Evaluator):
        def evaluate(self, candidate):
            return Score.invalid("no")

    result = evaluate_program(negated(Bad()), ProcessSandbox(), CODE, LIMITS)
    assert not result.valid and result.feedback == "no" and not result.evaluator_error


def test_a_perfectly_minimised_score_reads_0_not_minus_0():
    result = evaluate_program(negated(Error()), ProcessSandbox(), "def err(x):\n    return 0.0\n", LIMITS)
    assert result.valid and f"{result.score:.6g}" == "0"  # the engine's value: 0.0, not -0.0
    assert f"{natural(result.score, 'minimize'):.6g}" == "0"
    assert f"{natural(-0.0, 'minimize'):.6g}" == "0" and f"{natural(0.0, 'minimize'):.6g}" == "0"


class NegatedExcess(Evaluator):
    """A maximised problem that negates its own error, as bin_packing does: a perfect program gives -0.0."""

    def stages(self):
        return [Stage("full", lambda c: Score(value=-c.call("err", 0.0)))]


def test_a_maximised_minus_zero_reads_0():
    result = evaluate_program(NegatedExcess(), ProcessSandbox(), CODE, LIMITS)
    assert result.valid and f"{result.score:.6g}" == "0"
