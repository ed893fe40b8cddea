"""The evaluator API: a trusted class that scores a candidate through a sandbox session."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from evaluators.score import Score
from sandboxes import Session

__all__ = ["Evaluator", "Stage"]


@dataclass(frozen=True)
class Stage:
    """One step of a cascade: `run(candidate) -> Score`; `gate(score)` decides whether to go on.

    A stage whose score is invalid always ends the cascade. Cheap stages go first, so a broken
    candidate costs little. A valid program that a gate holds back keeps that stage's score as its
    score (the result's `stage` names the stage; its feedback says so): gate on a subset whose score
    estimates the full one, as `SplitEvaluator`'s quick stage does.
    """

    name: str
    run: Callable[[Session], Score]
    gate: Callable[[Score], bool] | None = None


class Evaluator:
    """Scores candidates for one problem. Subclass it and override `evaluate` (one stage) or `stages`.

    Contract:
        - It runs in a Ray worker, never in the sandbox; the candidate is reached only through the
          `Session` it is given (`candidate.call(...)`), which returns plain JSON data. Validate all
          of it: the candidate is hostile.
        - One instance scores many candidates, one at a time; keep state read-only after `__init__`.
        - `CandidateError` (raised by the session on a crash, timeout or exception) may be left
          uncaught: the cascade turns it into an invalid score with the message as feedback.
        - Keyword arguments of `__init__` come from the problem's `params` config.
        - Deterministic: the same program gets the same `valid`, `value`, metrics and features, bit for
          bit, in any process and on any machine. Draw every random choice from `seed_for(...)` (the
          run's seed, `run_seed`, which the engine sets before the first evaluation, and your own keys),
          never from an unseeded generator, the clock, `hash()` of a string or the order of a set. Name
          the metrics and features that measure the machine rather than the program (CPU time) in
          `timing_metrics`: they alone may differ. A problem noisy by nature declares `repeats: k` in
          its config.yaml instead; the campaign then scores each would-be best k times and ranks on
          the mean. `evolve check` and `evolve.testing.ContractSuite` score a program twice to check.

    Example::

        from evaluators import Evaluator, Score

        class SquareRoot(Evaluator):
            entrypoint = "root"

            def evaluate(self, candidate):
                got = candidate.call("root", 2.0, timeout=1.0)
                if not isinstance(got, (int, float)):
                    return Score.invalid(f"root(2.0) returned {type(got).__name__}, expected a number")
                error = abs(got * got - 2.0)
                return Score(value=-error, metrics={"error": error})
    """

    entrypoint: ClassVar[str] = "solve"
    timing_metrics: ClassVar[tuple[str, ...]] = ()
    """Metrics and features that measure the machine (time taken), left out of the determinism check."""
    prompt_metrics: ClassVar[tuple[str, ...] | None] = None
    """Glob patterns of the metrics a model is shown in prompts (None: all but earlier stages' (`smoke.*`)
    and timing ones; the config key `prompt.metrics` overrides it)."""
    run_seed: int = 0
    """The run's seed (the campaign's `seed`): set by the engine after `__init__`, before any scoring."""

    def seed_for(self, *keys: object) -> int:
        """A 64-bit seed from `run_seed` and `keys` (strings, numbers), the same in every process."""
        text = repr((int(self.run_seed), *keys)).encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")

    def stages(self) -> list[Stage]:
        """The cascade; by default a single stage that calls `evaluate`."""
        return [Stage("evaluate", self.evaluate)]

    def evaluate(self, candidate: Session) -> Score:
        """Score the candidate (override this, or override `stages`)."""
        raise NotImplementedError(f"{type(self).__name__} must override evaluate() or stages()")

    def validate(self, candidate: Session) -> Score | None:
        """Score on held-out validation data; None when the problem has none.

        Called only for programs that become the best. The result is stored apart from the metrics
        and never reaches a prompt.
        """
        return None

    def test(self, candidate: Session) -> Score | None:
        """Score on the test data, on request only (`evolve check --test PROGRAM`); None when absent."""
        return None

    def references(self, split: str) -> list[dict]:
        """Rows of reference figures for `evolve check` (one per method); empty when there are none."""
        return []

    reference_splits: ClassVar[tuple[str, ...]] = ()

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """Reference scores on `split` (`train`, the fitness; `val`; `test`), by name, in `Score.value`'s
        natural units, e.g. `{"best known": 2.635}`; empty when there are none. The train ones are drawn
        beside the campaign's curves (`evolve ui`, `report.html`); `benchmarks/search_quality.py` measures
        the share of the headroom to them on each split. Keep it free of candidate code, and quick for
        train: the viewer calls it."""
        return {}
