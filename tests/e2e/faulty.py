"""Evaluators with bugs of their own, for the fault tests (`problem.evaluator=tests.e2e.faulty:NAME`).

Ray workers import this module from the driver's working directory (the repository root), so a CLI
subprocess started there with PYTHONPATH at the root can name them.
"""

from __future__ import annotations

from problems.circle_packing.evaluator import CirclePacking


class Flaky(CirclePacking):
    """Scores like circle packing, but its own code raises on every second evaluation of a worker."""

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.calls = 0

    def evaluate(self, candidate):
        self.calls += 1
        if self.calls % 2 == 0:
            return {"scores": []}["score"]  # a bug in the trusted code: KeyError
        return super().evaluate(candidate)


class Broken(CirclePacking):
    """Scores a worker's first candidate (the initial program), then raises on every one after it."""

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.calls = 0

    def evaluate(self, candidate):
        self.calls += 1
        if self.calls > 1:
            raise ZeroDivisionError("the reference table is empty")
        return super().evaluate(candidate)


class Exploding(CirclePacking):
    """Cannot even be built: its constructor raises what no parameter check would."""

    def __init__(self, **params) -> None:
        raise RuntimeError("no licence server at licence.example:27000")
