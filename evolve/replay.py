"""Replay: a past campaign's recorded proposer calls, and the schedule that follows them.

Together with `evolve.llm.ReplayProposer` (which answers each iteration with its recorded response)
this reproduces the recorded sequence of programs exactly, for an evaluator that is deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from evolve.database import ProgramDatabase
from evolve.errors import ConfigError, EvolveError
from evolve.program import Program
from evolve.rundir import load_config, open_database
from evolve.schedule import Schedule

__all__ = ["Recording", "ReplaySchedule", "ReplayStep"]


@dataclass(frozen=True)
class ReplayStep:
    """One recorded call: what it was asked about and what came back."""

    iteration: int
    parent_hash: str
    inspiration_hashes: tuple[str, ...]
    model: str
    response: str | None
    error: str
    prompt_tokens: int
    completion_tokens: int
    cost: float


class Recording:
    """Every proposer call of one campaign, in the order it decided."""

    def __init__(self, source: str | Path, steps: list[ReplayStep]) -> None:
        self.source = Path(source)
        self.steps = tuple(steps)
        self._by_iteration = {s.iteration: s for s in self.steps}

    @classmethod
    def load(cls, source: str | Path) -> "Recording":
        """Read the calls of the run dir `source` (its database opened read-only)."""
        run_dir = Path(source)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"llm.source={source}: not a run dir (no config.yaml); give the run dir to replay")
        config = load_config(run_dir)
        with open_database(config, run_dir, read_only=True) as db:
            calls = db.calls()
        if not calls:
            raise ConfigError(f"llm.source={source}: the run recorded no proposer calls to replay")
        return cls(run_dir, [ReplayStep(c["iteration"], c["parent_hash"], tuple(c["inspiration_hashes"] or ()),
                                        c["model"], c["response"], c["error"], c["prompt_tokens"],
                                        c["completion_tokens"], c["cost"]) for c in calls])

    def step(self, iteration: int) -> ReplayStep | None:
        """The recorded call of `iteration`, if there was one."""
        return self._by_iteration.get(iteration)


class ReplaySchedule(Schedule):
    """The recorded iterations, in the recorded order, from the recorded parents and inspirations.

    Iterations decide one at a time in the order the original campaign decided (evaluations still run
    in parallel); a resumed replay skips the iterations already committed.
    """

    def __init__(self, recording: Recording, database: ProgramDatabase, iterations: int,
                 patience_seconds: float = 120.0) -> None:
        self._recording = recording
        self._db = database
        recorded = [s.iteration for s in recording.steps][:iterations]
        self._order = [i for i in recorded if not database.has_iteration(i)]
        self.budget = database.iterations + len(self._order)
        self._next = iter(self._order)
        self._position = 0
        self._turns = asyncio.Condition()
        self._patience = patience_seconds

    def next_iteration(self) -> int:
        return next(self._next)

    async def parents(self, iteration: int, island: int) -> tuple[Program, list[Program]]:
        """The recorded parent and inspirations, once they are committed here too."""
        step = self._recording.step(iteration)
        found = []
        for code_hash in (step.parent_hash, *step.inspiration_hashes):
            waited = 0.0
            while (program := self._db.seen(code_hash)) is None:
                if waited > self._patience:
                    raise EvolveError(f"replay diverged at iteration {iteration}: its recorded parent or "
                                      "inspiration was never produced (is the evaluator deterministic?)")
                await asyncio.sleep(0.02)
                waited += 0.02
            found.append(program)
        return found[0], found[1:]

    @contextlib.asynccontextmanager
    async def turn(self, iteration: int) -> AsyncIterator[None]:
        async with self._turns:
            await self._turns.wait_for(lambda: self._order[self._position] == iteration)
        try:
            yield
        finally:
            async with self._turns:
                self._position += 1
                self._turns.notify_all()
