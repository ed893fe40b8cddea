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


class Crashing(CirclePacking):
    """Scores like circle packing, but kills the Ray worker process it runs in on a candidate that holds
    `CRASH_MARK` (as an out-of-memory kill would), and on one that holds `DIE_ONCE_MARK` followed by a
    path the first time only (it creates the file then): a worker lost mid-evaluation."""

    CRASH_MARK = "# crash-the-worker"
    DIE_ONCE_MARK = "# die-once:"

    def prepare(self, code: str) -> None:
        import os

        if self.CRASH_MARK in code:
            os._exit(1)
        if self.DIE_ONCE_MARK in code:
            flag = code.split(self.DIE_ONCE_MARK, 1)[1].split()[0]
            try:
                os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
            os._exit(1)


class Slow(CirclePacking):
    """Scores like circle packing, after `seconds` of the evaluator's own time: workers are busy most of
    the time, so a node killed mid-campaign takes evaluations in flight with it."""

    def __init__(self, seconds: float = 1.0, **params) -> None:
        super().__init__(**params)
        self.seconds = seconds

    def prepare(self, code: str) -> None:
        import time

        time.sleep(self.seconds)


class Stalling(CirclePacking):
    """Scores the initial program's first evaluation like circle packing; every other evaluation, and every
    validation, waits until the test sets `RELEASE` (`STALLED` counts the waits), then fails: a problem whose
    evaluations outlast any budget. It waits in `prepare`, before a sandbox session is opened."""

    import threading as _threading

    RELEASE = _threading.Event()
    STALLED = _threading.Semaphore(0)
    _lock = _threading.Lock()
    _scored = False

    def prepare(self, code: str) -> None:
        from pathlib import Path

        initial = (Path(__file__).parents[2] / "problems" / "circle_packing" / "initial.py").read_text()
        with self._lock:
            first = code == initial and not Stalling._scored
            Stalling._scored = Stalling._scored or first
        if not first:
            self.STALLED.release()
            self.RELEASE.wait()
            raise RuntimeError("released after the campaign stopped")

    def validate(self, candidate):
        return super().evaluate(candidate)
