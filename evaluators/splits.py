"""An evaluator over named splits of instances: a cheap gate, fitness, and held-out data kept apart."""

from __future__ import annotations

import abc
from typing import Any

from evaluators.base import Evaluator, Stage
from evaluators.score import Score
from sandboxes import Session

__all__ = ["SplitEvaluator"]


class SplitEvaluator(Evaluator, abc.ABC):
    """Scores a candidate on `splits["train"]` after a cheap gate on `smoke_set`; `validate` and `test`
    score `splits["val"]` and `splits["test"]`, which never reach a prompt.

    Subclasses set `splits` (split name -> instances) and `smoke_set` in `__init__` and implement
    `score`. Example::

        class Sorting(SplitEvaluator):
            entrypoint = "sort"

            def __init__(self):
                self.splits = {name: make_lists(seed) for seed, name in enumerate(("train", "val", "test"))}
                self.smoke_set = self.splits["train"][:2]

            def score(self, candidate, instances, split):
                right = sum(candidate.call("sort", xs) == sorted(xs) for xs in instances)
                return Score(value=right / len(instances), feedback=f"{split}: {right} sorted")
    """

    splits: dict[str, list[Any]]
    smoke_set: list[Any]

    @abc.abstractmethod
    def score(self, candidate: Session, instances: list[Any], split: str) -> Score:
        """Score the candidate on `instances` of `split` (`smoke`, `train`, `val` or `test`)."""

    def stages(self) -> list[Stage]:
        """The smoke set first, then every training instance."""
        return [Stage("smoke", lambda c: self.score(c, self.smoke_set, "smoke"), gate=lambda s: s.valid),
                Stage("train", lambda c: self.score(c, self.splits["train"], "train"))]

    def validate(self, candidate: Session) -> Score:
        """Score on the validation split (never fitness, never in a prompt)."""
        return self.score(candidate, self.splits["val"], "val")

    def test(self, candidate: Session) -> Score:
        """Score on the test split (only `evolve check --test PROGRAM` calls this)."""
        return self.score(candidate, self.splits["test"], "test")
