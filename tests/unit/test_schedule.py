"""Schedules: live numbering and sampling; replay's recorded order, parents and resumption."""

from __future__ import annotations

import asyncio

from evolve.config import DatabaseConfig
from evolve.engine.replay import Recording, ReplaySchedule, ReplayStep
from evolve.engine.schedule import LiveSchedule
from evolve.population import IslandPopulation, attach
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage.database import ProgramDatabase


def _db(tmp_path) -> ProgramDatabase:
    return ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", "t", "p", DatabaseConfig(islands=2))


def _add(db, iteration, code):
    return db.add(iteration=iteration, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                  score=float(iteration))


def _step(iteration, parent_hash):
    return ReplayStep(iteration, parent_hash, (), "m", "reply", "", 0, 0, 0.0)


def test_live_numbers_on_from_the_last_committed_iteration(tmp_path):
    db = _db(tmp_path)
    seed = _add(db, 0, "x = 0\n")
    _add(db, 7, "x = 7\n")
    schedule = LiveSchedule(db, attach(IslandPopulation(db.config), db), iterations=20)
    assert schedule.budget == 20 and [schedule.next_iteration() for _ in range(3)] == [8, 9, 10]
    parent, _ = asyncio.run(schedule.parents(8, 1))
    assert parent.id in {seed.id, db.best().id}
    assert schedule.crossover_partner(0) is not None


def test_replay_decides_in_the_recorded_order_from_the_recorded_parents(tmp_path):
    db = _db(tmp_path)
    seed = _add(db, 0, "x = 0\n")
    later = "x = 2\n"
    recording = Recording(tmp_path, [_step(3, seed.code_hash), _step(1, seed.code_hash),
                                     _step(2, normalized_hash(later))])
    schedule = ReplaySchedule(recording, db, iterations=10, patience_seconds=5)
    assert schedule.budget == 3 and [schedule.next_iteration() for _ in range(3)] == [3, 1, 2]
    decided = []

    async def iteration(number):
        async with schedule.turn(number):
            parent, _ = await schedule.parents(number, 0)
            decided.append((number, parent.code))
            if number == 1:  # iteration 2's recorded parent appears only now
                _add(db, 1, later)

    async def main():
        await asyncio.gather(*(iteration(n) for n in (2, 1, 3)))

    asyncio.run(main())
    assert decided == [(3, "x = 0\n"), (1, "x = 0\n"), (2, later)]

    resumed = ReplaySchedule(recording, db, iterations=10)  # iteration 1 is committed now
    assert resumed.budget == db.iterations + 2 and [resumed.next_iteration() for _ in range(2)] == [3, 2]
