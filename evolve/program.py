"""A program as the database hands it out: a frozen snapshot, never a live ORM row."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["NODE_METRIC", "SPREAD_METRICS", "Program", "ProgramStatus", "beats", "score_spread"]

NODE_METRIC = "ray.node"
"""The metrics key under which the engine (not the evaluator) records the Ray node that evaluated a program."""

SPREAD_METRICS = {"n": "repeats.n", "min": "repeats.min", "max": "repeats.max", "std": "repeats.std"}
"""The metrics keys under which the engine records the spread of a noisy problem's repeated scorings
(`problem.repeats`): how many, and their lowest, highest (natural values) and standard deviation."""


def beats(score: float | None, other: float | None) -> bool:
    """Whether `score` is higher than `other`; None (an invalid program's score) beats nothing, loses to all."""
    return score is not None and (other is None or score > other)


def score_spread(metrics: Mapping[str, Any]) -> dict[str, float | None] | None:
    """The spread of a program's repeated scorings (`n`, `min`, `max`, `std`), None when scored once."""
    if SPREAD_METRICS["n"] not in metrics:
        return None
    return {name: metrics.get(key) for name, key in SPREAD_METRICS.items()}


class ProgramStatus(str, enum.Enum):  # noqa: UP042 (a StrEnum's str() and format() would differ)
    """What became of one iteration's proposal."""

    VALID = "valid"                      # evaluated, passed every stage
    INVALID = "invalid"                  # evaluated, failed (crash, timeout, wrong answer)
    EDIT_FAILED = "edit_failed"          # the proposal's edit could not be applied
    DUPLICATE = "duplicate"              # the child equals a program already evaluated
    SIMILAR = "similar"                  # a near-duplicate, rejected by the novelty filter
    PROPOSAL_FAILED = "proposal_failed"  # the proposer raised (network, server error)
    EVALUATOR_ERROR = "evaluator_error"  # the trusted evaluator raised: its bug, not the candidate's

    def is_evaluated(self) -> bool:
        """True when the program went through the evaluator."""
        return self in (ProgramStatus.VALID, ProgramStatus.INVALID, ProgramStatus.EVALUATOR_ERROR)


@dataclass(frozen=True)
class Program:
    """One program and what is known of it. Mutating a snapshot changes nothing in the database.

    Attributes:
        id: database id.
        iteration: the campaign iteration that produced it (0 for the initial program).
        status: see `ProgramStatus`.
        code: the full source (for EDIT_FAILED and PROPOSAL_FAILED: the parent's).
        code_hash: normalised hash used for deduplication.
        score: fitness (higher is better); None unless VALID.
        metrics, features, feedback: from the evaluator.
        error: why the proposal or evaluation failed, cut to a readable length.
        parent_id: the program it was derived from.
        island: the island it was born on.
        generation: the parent's generation plus one.
        proposer: the model or mutator that proposed it.
        proposal: the proposal text (kept for failed edits, to debug them).
        eval_seconds, propose_seconds: wall times of the two steps.
        validation: held-out scores (`score`, `metrics`, `feedback`), set only for programs that became
            the best; never shown in prompts.
        prompt_tokens, completion_tokens, cost: what the proposal cost (USD).
        choice: why the proposer picked the model it used (ensembles).
        canonical_hash: hash of the canonical tokens (names, comments and docstrings normalised).
        mode: what the prompt asked for: `diff`, `full` or `crossover`.
        created_at: when it was committed.
    """

    id: int
    iteration: int
    status: ProgramStatus
    code: str
    code_hash: str
    score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    feedback: str = ""
    error: str = ""
    parent_id: int | None = None
    island: int = 0
    generation: int = 0
    proposer: str = ""
    proposal: str = ""
    eval_seconds: float | None = None
    propose_seconds: float | None = None
    validation: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    choice: str = ""
    canonical_hash: str = ""
    mode: str = ""
    created_at: datetime | None = None
