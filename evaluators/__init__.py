"""The evaluator library API: subclass `Evaluator`, return `Score`s, chain `Stage`s into a cascade."""

from __future__ import annotations

from evaluators.base import Evaluator, Stage
from evaluators.cascade import EvaluationResult, evaluate_held_out, evaluate_program
from evaluators.score import Score
from sandboxes import CandidateCrash, CandidateError, CandidateTimeout, SandboxLimits, Session

__all__ = [
    "CandidateCrash",
    "CandidateError",
    "CandidateTimeout",
    "EvaluationResult",
    "Evaluator",
    "Score",
    "SandboxLimits",
    "Session",
    "Stage",
    "evaluate_held_out",
    "evaluate_program",
]
