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
    `score`. A subclass that also sets `quick_set` (a few training instances) gets a cascade: the quick
    set is scored after the smoke set, and only a child for which `could_matter(quick_score)` holds is
    scored on the whole training split; one that is held back keeps its quick score (the result's
    `stage` is `quick`). Make `could_matter` a function of the score alone (a threshold from the
    evaluator's own reference figures, say), so that a program's score never depends on which other
    programs the campaign has found. Example::

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
    quick_set: list[Any] | None = None

    @abc.abstractmethod
    def score(self, candidate: Session, instances: list[Any], split: str) -> Score:
        """Score the candidate on `instances` of `split` (`smoke`, `quick`, `train`, `val` or `test`)."""

    def could_matter(self, quick: Score) -> bool:
        """Whether a child that scored `quick` on `quick_set` goes on to the whole training split (by default,
        every valid one)."""
        return quick.valid

    def stages(self) -> list[Stage]:
        """The smoke set first, then the quick set (when there is one), then every training instance."""
        stages = [Stage("smoke", lambda c: self.score(c, self.smoke_set, "smoke"), gate=lambda s: s.valid)]
        quick = self.quick_set
        if quick:
            stages.append(Stage("quick", lambda c: self.score(c, quick, "quick"), gate=self.could_matter))
        stages.append(Stage("train", lambda c: self.score(c, self.splits["train"], "train")))
        return stages

    def validate(self, candidate: Session) -> Score:
        """Score on the validation split (never fitness, never in a prompt)."""
        return self.score(candidate, self.splits["val"], "val")

    def test(self, candidate: Session) -> Score:
        """Score on the test split (only `evolve check --test PROGRAM` calls this)."""
        return self.score(candidate, self.splits["test"], "test")
