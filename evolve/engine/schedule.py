"""Which iteration runs next, and from which parents: the campaign asks a `Schedule`.

`LiveSchedule` asks the population (`evolve.population`) and loads the programs from the store; replay
(`evolve.engine.replay.ReplaySchedule`) follows a recorded campaign's order and parents instead.
"""

from __future__ import annotations

import abc
import contextlib
import itertools

from evolve.population import Population, Selection
from evolve.program import Program
from evolve.storage.database import ProgramDatabase

__all__ = ["LiveSchedule", "Schedule"]


class Schedule(abc.ABC):
    """Numbers the iterations, chooses their parents, and orders their decisions.

    Contract: the campaign calls `next_iteration` only while fewer than `budget` iterations are
    committed or in flight, from its one event loop (no thread safety needed). `parents` may wait (a
    replay waits for its recorded parent to be committed). Everything between choosing the parents and
    handing the child to evaluation runs inside `turn(iteration)`, so a schedule can make those
    decisions happen one at a time in a fixed order while evaluations overlap.

    Example::

        class Hillclimb(Schedule):          # always the best program, never an inspiration
            def __init__(self, database, iterations):
                self.db, self.budget, self._n = database, iterations, itertools.count(1)
            def next_iteration(self):
                return next(self._n)
            async def parents(self, iteration, island):
                return self.db.best(), []
    """

    budget: int
    """Iterations committed in the whole campaign when it is done."""

    @abc.abstractmethod
    def next_iteration(self) -> int:
        """The number of the next iteration to start."""

    @abc.abstractmethod
    async def parents(self, iteration: int, island: int) -> tuple[Program, list[Program]]:
        """The parent and the inspirations of `iteration` on `island`."""

    def crossover_partner(self, island: int) -> Program | None:
        """A second parent for a crossover prompt on `island`; None: ask for a crossover without one."""
        return None

    def selection(self, iteration: int) -> Selection | None:
        """Why `parents` chose what it did for `iteration` (labels, the parent's cell), once; None: unknown."""
        return None

    def turn(self, iteration: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while `iteration` decides (proposal, edit, duplicate check); by default no waiting."""
        return contextlib.nullcontext()


class LiveSchedule(Schedule):
    """A live campaign: iterations numbered on from the last committed one, parents and inspirations
    chosen by the population, a crossover partner where the population offers one."""

    def __init__(self, database: ProgramDatabase, population: Population, iterations: int) -> None:
        self._db = database
        self.population = population
        self.budget = iterations
        self._numbers = itertools.count(max(1, database.last_iteration + 1))
        self._chosen: dict[int, Selection] = {}

    def next_iteration(self) -> int:
        return next(self._numbers)

    async def parents(self, iteration: int, island: int) -> tuple[Program, list[Program]]:
        chosen = self._chosen[iteration] = self.population.select(island)
        parent, *inspirations = self._db.get_many([chosen.parent, *chosen.inspirations])  # one query at most
        return parent, inspirations

    def selection(self, iteration: int) -> Selection | None:
        return self._chosen.pop(iteration, None)

    def crossover_partner(self, island: int) -> Program | None:
        partner = self.population.partner(island)
        return self._db.get(partner) if partner is not None else None
