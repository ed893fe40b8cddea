"""The evaluator library API: subclass `Evaluator`, return `Score`s, chain `Stage`s into a cascade."""

from __future__ import annotations

from evaluators.base import Evaluator, Stage
from evaluators.budget import CallBudget, OverBudget, RejectedReply, check_numbers
from evaluators.cascade import EvaluationResult, evaluate_held_out, evaluate_program
from evaluators.score import Score
from evaluators.splits import SplitEvaluator
from sandboxes import CandidateCrash, CandidateError, CandidateTimeout, SandboxLimits, Session

__all__ = [
    "CallBudget",
    "CandidateCrash",
    "CandidateError",
    "CandidateTimeout",
    "EvaluationResult",
    "Evaluator",
    "OverBudget",
    "RejectedReply",
    "Score",
    "SandboxLimits",
    "Session",
    "SplitEvaluator",
    "Stage",
    "check_numbers",
    "evaluate_held_out",
    "evaluate_program",
]
