"""The determinism contract, checked: where two scorings of the same program differ, in one line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from evaluators.cascade import EvaluationResult
from evaluators.direction import natural

__all__ = ["first_difference"]


def _timing(key: str, timing: frozenset[str]) -> bool:
    """`key` (or `stage.key`, an earlier stage's) names a timing metric."""
    return key in timing or key.rpartition(".")[2] in timing


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _compare(kind: str, first: dict[str, Any], second: dict[str, Any], timing: frozenset[str]) -> str | None:
    for key in sorted(set(first) | set(second)):
        if _timing(key, timing):
            continue
        if key not in second or key not in first:
            return f"{kind} {key!r} only in the {'first' if key in first else 'second'} scoring"
        if first[key] != second[key]:
            return f"{kind} {key!r} {_short(first[key])} then {_short(second[key])}"
    return None


def first_difference(first: EvaluationResult, second: EvaluationResult, timing: Iterable[str] = (),
                     direction: str = "maximize") -> str | None:
    """What differs between two scorings of one program (validity, score, metrics, features), or None.

    `timing` names the metrics and features that measure the machine (`Evaluator.timing_metrics`); they
    are not compared. Scores are compared bit for bit and shown in the problem's natural `direction`.
    """
    if first.valid != second.valid:
        reason = " ".join((second.feedback if first.valid else first.feedback).split())[:120]
        return f"{'valid then invalid' if first.valid else 'invalid then valid'} ({reason})"
    if first.score != second.score:
        return f"score {natural(first.score, direction)!r} then {natural(second.score, direction)!r}"
    skip = frozenset(timing)
    return (_compare("metric", first.metrics, second.metrics, skip)
            or _compare("feature", first.features, second.features, skip))
