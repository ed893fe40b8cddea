"""Replay: a past campaign's recorded proposer calls, and the schedule that follows them.

Together with `evolve.proposals.llm.ReplayProposer` (which answers each iteration with its recorded response)
this reproduces the recorded sequence of programs exactly, for an evaluator that is deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from evolve.engine.schedule import Schedule
from evolve.errors import EvolveError
from evolve.program import Program
from evolve.storage.database import ProgramDatabase
from evolve.storage.recording import Recording, ReplayStep

__all__ = ["Recording", "ReplaySchedule", "ReplayStep"]  # the recording is re-exported


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
        if step is None:
            raise EvolveError(f"the recording has no call for iteration {iteration}: replay only recorded ones")
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
