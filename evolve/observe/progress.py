"""The live campaign display (rich) and the matching periodic log line.

On a terminal: the header lines (the run dir, and whatever else the campaign adds, such as the Ray
dashboard's address), then a line for each new best printed above a two-line display that fits the
console's width (80 columns included): the bar with elapsed time and ETA, then the figures. Elapsed
time, rates and the ETA all count from `Stats.started`, the first proposal (the budgets' clock).

Elsewhere (a scheduler's log, `nohup`, CI), plain lines instead: the header, then one line with the same
figures every `lines_every` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

__all__ = ["ProgressDisplay", "Stats", "clock"]

_log = logging.getLogger("evolve.engine.campaign")


def clock(seconds: float) -> str:
    """`1:02:03`, `2:03` (hours only when there are any)."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Stats:
    """Running figures of one campaign invocation; scores as the problem states them (natural)."""

    iterations: int = 0
    evaluated: int = 0
    valid: int = 0
    in_flight: int = 0
    best: float | None = None
    started: float = 0.0  # time.monotonic() of the first proposal: every rate and the ETA count from it
    evaluator_errors: int = 0
    unapplied: int = 0  # answered proposals whose edit could not be applied
    best_iteration: int | None = None
    best_by: str = ""

    def set_best(self, score: float | None, iteration: int | None, by: str) -> None:
        """The best so far (its natural score), the iteration that found it and its proposer."""
        self.best, self.best_iteration, self.best_by = score, iteration, by

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the first proposal."""
        return max(0.0, (time.monotonic() if now is None else now) - self.started)

    @property
    def evals_per_second(self) -> float:
        """Evaluations finished per wall-clock second since the first proposal."""
        elapsed = self.elapsed()
        return self.evaluated / elapsed if elapsed > 0 else 0.0

    @property
    def valid_share(self) -> float:
        """Valid programs among those evaluated."""
        return self.valid / self.evaluated if self.evaluated else 0.0

    def eta(self, remaining: int, wall_seconds: float | None = None,
            now: float | None = None) -> tuple[float, str] | None:
        """Seconds left and which budget binds (`iterations` or `wall`), from this invocation's pace; None
        when neither is known yet."""
        elapsed = self.elapsed(now)
        by_iterations = remaining * elapsed / self.iterations if self.iterations and elapsed > 0 else None
        by_wall = max(0.0, wall_seconds - elapsed) if wall_seconds is not None else None
        if by_wall is not None and (by_iterations is None or by_wall < by_iterations):
            return by_wall, "wall"
        return (by_iterations, "iterations") if by_iterations is not None else None

    def parts(self) -> list[str]:
        """The figures, most important first."""
        best = f"{self.best:.6g}" if self.best is not None else "-"
        out = [f"best {best}", f"{self.evals_per_second:.2f} evals/s",
               f"valid {100 * self.valid_share:.0f}% of {self.evaluated}"]
        if self.evaluator_errors:
            out.append(f"evaluator errors {self.evaluator_errors}")
        if self.unapplied:
            out.append(f"edits not applied {self.unapplied} of {self.iterations}")
        return out + [f"in flight {self.in_flight}"]

    def line(self) -> str:
        """One line with every figure (the log's)."""
        return " | ".join(self.parts())


def _fitted(parts: Iterable[str], width: int) -> str:
    """As many of `parts` as fit in `width` columns, joined; the first always."""
    line = ""
    for part in parts:
        longer = f"{line} | {part}" if line else part
        if line and len(longer) > width:
            break
        line = longer
    return line


class _Clock(ProgressColumn):
    """Elapsed time since the first proposal and the ETA, ticking between updates."""

    def __init__(self, display: ProgressDisplay) -> None:
        super().__init__()
        self._display = display

    def render(self, task: Task) -> Text:
        stats = self._display.stats
        if stats is None:
            return Text("")
        now = time.monotonic()
        remaining = max(0, (task.total or 0) - task.completed)
        eta = stats.eta(int(remaining), self._display.wall_seconds, now)
        left = "eta -" if eta is None else f"eta {clock(eta[0])}" + (" (wall)" if eta[1] == "wall" else "")
        return Text(f"{clock(stats.elapsed(now))} {left}", style="progress.elapsed")


class _TwoLines(Progress):
    """The bar line, then the figures line, each fitted to the console's width."""

    def __init__(self, display: ProgressDisplay, *columns: ProgressColumn, **options) -> None:
        self.display = display
        super().__init__(*columns, **options)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        stats = self.display.stats
        if stats is not None and hasattr(self, "live"):  # not while `Progress.__init__` builds its Live
            yield Text(_fitted(stats.parts(), self.console.width), no_wrap=True, overflow="ellipsis")


class ProgressDisplay:
    """A progress bar with the campaign's figures, a line per new best, plus a log line every `log_every` s.

    Args:
        total, done: the iteration budget and the iterations committed before this invocation.
        enabled: draw on the console (a terminal); the log line is written either way.
        header: lines printed once at the start, above the bar (the run dir; the Ray dashboard's address).
        wall_seconds: the wall-clock budget, for the ETA when it binds before the iterations do.
        stats: the figures `update` will be given; a best found after the start is announced with a line.
        lines_every: when not `enabled`, print the header and then a plain line of figures on the console
            every this many seconds (None: print nothing).
    """

    def __init__(self, total: int, done: int, enabled: bool, console: Console | None = None,
                 log_every: float = 10.0, *, header: Sequence[str] = (), wall_seconds: float | None = None,
                 stats: Stats | None = None, lines_every: float | None = None) -> None:
        self.stats = stats
        self.wall_seconds = wall_seconds
        self._progress = _TwoLines(
            self, TextColumn("[bold]evolve"), BarColumn(bar_width=None), MofNCompleteColumn(), _Clock(self),
            console=console, disable=not enabled, transient=False, expand=True,
        )
        self._task = self._progress.add_task("campaign", total=total, completed=done)
        self._enabled = enabled
        self._header = list(header)
        self._log_every = log_every
        self._last_log = time.monotonic()
        self._lines_every = None if enabled else lines_every
        self._last_line = self._last_log
        self._total = total
        self._shown = (stats.best_iteration, stats.best) if stats is not None else None  # the best last shown

    def __enter__(self) -> Self:
        if self._enabled or self._lines_every is not None:
            for line in self._header:  # whole, however long (a path stays one line to copy)
                self._progress.console.print(Text(line), soft_wrap=True)
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, stats: Stats, done: int) -> None:
        """Show the latest figures (and a line when the best changed); log them now and then."""
        self.stats = stats
        best = (stats.best_iteration, stats.best)
        if self._shown is not None and best != self._shown and stats.best is not None:
            self._new_best(stats, self._shown[1])
        self._shown = best
        self._progress.update(self._task, completed=done)
        now = time.monotonic()
        if now - self._last_log >= self._log_every:
            self._last_log = now
            _log.info("iteration %d: %s", done, stats.line())
        if self._lines_every is not None and now - self._last_line >= self._lines_every:
            self._last_line = now
            self._progress.console.print(Text(self._plain(stats, done, now)), soft_wrap=True)

    def _plain(self, stats: Stats, done: int, now: float) -> str:
        """The line printed without a terminal: iterations, elapsed time and ETA, then every figure."""
        eta = stats.eta(max(0, self._total - done), self.wall_seconds, now)
        left = "eta -" if eta is None else f"eta {clock(eta[0])}" + (" (wall)" if eta[1] == "wall" else "")
        return f"iteration {done}/{self._total} | {clock(stats.elapsed(now))} {left} | {stats.line()}"

    def _new_best(self, stats: Stats, before: float | None) -> None:
        """A line above the bar: the new best, by how much, when and by whom."""
        if not self._enabled:
            return
        gain = "" if before is None else f" ({stats.best - before:+.6g})"
        self._progress.console.print(Text(f"new best {stats.best:.6g}{gain} at iteration {stats.best_iteration}, "
                                          f"{clock(stats.elapsed())} in, by {stats.best_by}"))
