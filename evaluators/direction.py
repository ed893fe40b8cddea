"""Minimised problems: the engine always maximises, so a minimised evaluator's values are negated once,
where its scores enter the engine (`evolve.problems.load_evaluator`). Users see the natural value."""

from __future__ import annotations

import dataclasses
from typing import Any, overload

from evaluators.base import Evaluator, Stage
from evaluators.score import Score
from sandboxes import Session

__all__ = ["DIRECTIONS", "Negated", "natural", "negated"]

DIRECTIONS = ("maximize", "minimize")


@overload
def natural(value: float, direction: str) -> float: ...
@overload
def natural(value: None, direction: str) -> None: ...
def natural(value: float | None, direction: str) -> float | None:
    """The value a user reads: the engine's value, negated back for a minimised problem."""
    if value is None or direction != "minimize":
        return value
    return 0.0 - value  # not -value: a perfect 0.0 stays 0.0 (no "-0" printed)


@overload
def _flip(score: Score) -> Score: ...
@overload
def _flip(score: None) -> None: ...
def _flip(score: Score | None) -> Score | None:
    if not isinstance(score, Score) or not score.valid:
        return score  # None, an invalid score, or what the cascade names as not a Score
    return dataclasses.replace(score, value=0.0 - score.value)  # 0.0, never -0.0


class Negated(Evaluator):
    """`inner` with every valid `Score.value` negated (its stages, `validate` and `test`)."""

    def __init__(self, inner: Evaluator) -> None:
        self.inner = inner
        self.entrypoint = inner.entrypoint  # type: ignore[misc]
        self.reference_splits = inner.reference_splits  # type: ignore[misc]
        self.timing_metrics = inner.timing_metrics  # type: ignore[misc]
        self.run_seed = inner.run_seed

    def stages(self) -> list[Stage]:
        def wrap(stage: Stage) -> Stage:  # the gate sees the natural score, as its author wrote it
            gate = stage.gate
            return Stage(stage.name, lambda c: _flip(stage.run(c)),
                         None if gate is None else (lambda score: gate(_flip(score))))

        return [wrap(s) for s in self.inner.stages()]

    def references(self, split: str) -> list[dict]:
        return self.inner.references(split)

    def reference_scores(self, split: str = "train") -> dict[str, float]:  # natural values, as users read them
        # an evaluator written before splits were asked for overrides `reference_scores(self)`
        return self.inner.reference_scores() if split == "train" else self.inner.reference_scores(split)

    def __getattr__(self, name: str) -> Any:  # only for names not found on the wrapper itself
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class _NegatedValidate(Negated):
    def validate(self, candidate: Session) -> Score | None:
        return _flip(self.inner.validate(candidate))


class _NegatedTest(Negated):
    def test(self, candidate: Session) -> Score | None:
        return _flip(self.inner.test(candidate))


class _NegatedBoth(_NegatedValidate, _NegatedTest):
    pass


def negated(evaluator: Evaluator) -> Evaluator:
    """`evaluator` seen by an engine that maximises; the held-out hooks exist only where the inner has them."""
    cls = type(evaluator)
    has_validate = cls.validate is not Evaluator.validate
    has_test = cls.test is not Evaluator.test
    kind = {(False, False): Negated, (True, False): _NegatedValidate, (False, True): _NegatedTest,
            (True, True): _NegatedBoth}[(has_validate, has_test)]
    return kind(evaluator)
