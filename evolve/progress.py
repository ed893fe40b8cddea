"""The live campaign display (rich) and the matching periodic log line."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["Stats", "ProgressDisplay"]

_log = logging.getLogger("evolve.campaign")


@dataclass
class Stats:
    """Running figures of one campaign invocation."""

    iterations: int = 0
    evaluated: int = 0
    valid: int = 0
    in_flight: int = 0
    best: float | None = None
    started: float = 0.0
    evaluator_errors: int = 0
    unapplied: int = 0  # answered proposals whose edit could not be applied

    @property
    def evals_per_second(self) -> float:
        """Evaluations finished per wall-clock second since the first proposal."""
        elapsed = time.monotonic() - self.started
        return self.evaluated / elapsed if elapsed > 0 else 0.0

    @property
    def valid_share(self) -> float:
        """Valid programs among those evaluated."""
        return self.valid / self.evaluated if self.evaluated else 0.0

    def line(self) -> str:
        """One line with every figure."""
        best = f"{self.best:.6g}" if self.best is not None else "-"
        errors = f" | evaluator errors {self.evaluator_errors}" if self.evaluator_errors else ""
        unapplied = f" | edits not applied {self.unapplied} of {self.iterations}" if self.unapplied else ""
        return (f"best {best} | {self.evals_per_second:.2f} evals/s | valid {100 * self.valid_share:.0f}% of "
                f"{self.evaluated} evaluated | in flight {self.in_flight}{unapplied}{errors}")


class ProgressDisplay:
    """A progress bar with the campaign's figures, plus a log line every `log_every` seconds."""

    def __init__(self, total: int, done: int, enabled: bool, console: Console | None = None,
                 log_every: float = 10.0) -> None:
        self._progress = Progress(
            TextColumn("[bold]evolve"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(), console=console, disable=not enabled, transient=False,
        )
        self._task = self._progress.add_task("campaign", total=total, completed=done, line="")
        self._log_every = log_every
        self._last_log = time.monotonic()

    def __enter__(self) -> "ProgressDisplay":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, stats: Stats, done: int) -> None:
        """Show the latest figures; log them now and then."""
        self._progress.update(self._task, completed=done, line=stats.line())
        now = time.monotonic()
        if now - self._last_log >= self._log_every:
            self._last_log = now
            _log.info("iteration %d: %s", done, stats.line())
