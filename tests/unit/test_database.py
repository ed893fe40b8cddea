from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import event

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.database import ProgramDatabase
from evolve.edits import normalized_hash
from evolve.program import ProgramStatus
from tests.unit.old_database import write_first_schema

FEATURES = [FeatureDimension(name="spread", min=0.0, max=1.0, bins=4)]


def _db(tmp_path, **overrides) -> ProgramDatabase:
    config = DatabaseConfig(**{"islands": 3, "migration_count": 1, **overrides})
    return ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", "test", "p", config, FEATURES, seed=1)


def _add(db, iteration, score, spread=0.5, island=0, parent=None, status=ProgramStatus.VALID):
    code = f"x = {iteration}\n"
    return db.add(iteration=iteration, status=status, code=code, code_hash=normalized_hash(code), score=score,
                  features={"spread": spread}, parent=parent, island=island, proposer="t")


def test_each_program_is_committed_at_once(tmp_path):
    db = _db(tmp_path)
    _add(db, 0, 1.0)
    _add(db, 1, 2.0, island=1)
    with sqlite3.connect(tmp_path / "programs.db") as raw:  # a second, independent connection
        assert raw.execute("select count(*) from programs").fetchone()[0] == 2
        assert raw.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_initial_program_seeds_every_island_and_best_tracks_max(tmp_path):
    db = _db(tmp_path)
    initial = _add(db, 0, 1.0)
    assert db.island_best() == [1.0, 1.0, 1.0]
    child = _add(db, 1, 3.0, island=2, parent=initial)
    assert db.best().id == child.id and child.generation == 1 and child.parent_id == initial.id
    assert db.island_best() == [1.0, 1.0, 3.0]
    _add(db, 2, 0.0, island=2, status=ProgramStatus.INVALID)
    assert db.best().id == child.id


def test_resume_rebuilds_the_same_indexes(tmp_path):
    db = _db(tmp_path, migration_interval=1)
    initial = _add(db, 0, 1.0)
    for i in range(1, 10):
        _add(db, i, float(i % 4), spread=i / 10, island=i % 3, parent=initial)
    db.migrate(9)
    _add(db, 10, 0.0, status=ProgramStatus.EDIT_FAILED)
    before = (db.island_best(), db.best().id, [sorted(i.grid.items()) for i in db.islands],
              [sorted(i.member_set) for i in db.islands], db.size, db.last_iteration,
              [p.id for p in db.recent_failures()])
    db.close()
    again = _db(tmp_path, migration_interval=1)
    after = (again.island_best(), again.best().id, [sorted(i.grid.items()) for i in again.islands],
             [sorted(i.member_set) for i in again.islands], again.size, again.last_iteration,
             [p.id for p in again.recent_failures()])
    assert after == before


def test_ring_migration_sends_best_to_next_island(tmp_path):
    db = _db(tmp_path)
    initial = _add(db, 0, 1.0)
    star = _add(db, 1, 9.0, island=1, parent=initial)
    assert star.id not in db.islands[2].member_set
    assert db.migrate(1) >= 1
    assert star.id in db.islands[2].member_set and db.island_best()[2] == 9.0
    assert db.migrate(2) == 0 or star.id in db.islands[0].member_set  # idempotent per target


def test_grid_keeps_the_better_program_per_cell(tmp_path):
    db = _db(tmp_path)
    _add(db, 0, 1.0, spread=0.9)
    low = _add(db, 1, 2.0, spread=0.1)
    high = _add(db, 2, 5.0, spread=0.12)  # same cell as `low`
    worse = _add(db, 3, 0.5, spread=0.13)
    cell_occupants = set(db.islands[0].grid.values())
    assert high.id in cell_occupants and low.id not in cell_occupants and worse.id not in cell_occupants


def test_sampling_reads_no_rows_and_inspirations_exclude_parent(tmp_path):
    db = _db(tmp_path, num_top_inspirations=2, num_diverse_inspirations=2)
    initial = _add(db, 0, 1.0)
    for i in range(1, 40):
        _add(db, i, float(i), spread=(i % 8) / 8, island=i % 3, parent=initial)
    statements = []
    event.listen(db._engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    islands_seen = set()
    for n in range(300):
        parent, inspirations = db.sample(n % 3)
        assert parent.status is ProgramStatus.VALID
        assert parent.id not in {p.id for p in inspirations}
        assert len({p.id for p in inspirations}) == len(inspirations) <= 4
        islands_seen.add(parent.island)
    assert statements == [], "sampling must use the in-memory indexes, not the database"
    assert islands_seen == {0, 1, 2}


def test_seen_finds_evaluated_programs_by_normalised_hash(tmp_path):
    db = _db(tmp_path)
    _add(db, 0, 1.0)
    _add(db, 1, 0.0, status=ProgramStatus.INVALID)
    assert db.seen(normalized_hash("x = 0\n# comment\n")).iteration == 0
    assert db.seen(normalized_hash("x = 1\n")).status is ProgramStatus.INVALID
    assert db.seen(normalized_hash("x = 2\n")) is None


def test_sampling_an_empty_database_says_why(tmp_path):
    with pytest.raises(LookupError, match="no valid program"):
        _db(tmp_path).sample(0)


def test_two_campaigns_share_one_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = ProgramDatabase(url, "a", "p", DatabaseConfig(islands=1))
    b = ProgramDatabase(url, "b", "p", DatabaseConfig(islands=1))
    _add(a, 0, 1.0)
    assert b.size == 0 and b.best() is None and a.size == 1


def test_a_database_from_an_older_evolve_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    write_first_schema(path, "old", "p")
    db = ProgramDatabase(f"sqlite:///{path}", "old", "p", DatabaseConfig(islands=2))
    assert db.best().score == 1.5 and db.best().cost == 0.0 and db.best().validation is None
    child = db.add(iteration=1, status=ProgramStatus.VALID, code="x = 1", code_hash="h1", score=2.0, cost=0.25,
                   prompt_tokens=10, choice="thompson: because", parent=db.best())
    assert db.total_cost == 0.25 and db.get(child.id).choice == "thompson: because"
