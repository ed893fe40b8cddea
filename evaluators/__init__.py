"""The evaluator library API: subclass `Evaluator`, return `Score`s, chain `Stage`s into a cascade."""

from __future__ import annotations

import logging

from evaluators.base import Evaluator, Stage
from evaluators.budget import CallBudget, OverBudget, RejectedReply, check_numbers
from evaluators.cascade import EvaluationResult, evaluate_held_out, evaluate_program
from evaluators.determinism import first_difference
from evaluators.lockstep import Episode, lockstep
from evaluators.score import Score
from evaluators.splits import SplitEvaluator
from sandboxes import CandidateCrash, CandidateError, CandidateTimeout, SandboxLimits, Session

__all__ = [
    "CallBudget",
    "CandidateCrash",
    "CandidateError",
    "CandidateTimeout",
    "Episode",
    "EvaluationResult",
    "Evaluator",
    "OverBudget",
    "RejectedReply",
    "SandboxLimits",
    "Score",
    "Session",
    "SplitEvaluator",
    "Stage",
    "check_numbers",
    "evaluate_held_out",
    "evaluate_program",
    "first_difference",
    "lockstep",
]

# A library's logger: an evaluator's traceback (logged when it raises) goes where the application sends
# it (an evaluation slot collects it for campaign.log), never to stderr by Python's last-resort handler
# (a local slot already closed by the tear-down, the report's reference lines)
logging.getLogger(__name__).addHandler(logging.NullHandler())

