"""Database faults on real SQLite files: a lock another process holds (retried, then one line), a damaged file
(one line naming it and `evolve repair`), and the repair that salvages every readable row."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

import pytest

from evolve.config import DatabaseConfig
from evolve.errors import DatabaseCorrupt, DatabaseUnavailable
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage.database import ProgramDatabase
from evolve.storage.repair import is_damaged, repair

TABLES = ("campaigns", "programs", "llm_calls", "llm_messages", "migrations", "stops")


def _add(db, iteration, text="x"):
    code = f"{text} = {iteration}\n" + "# padding\n" * 200  # a few pages' worth of rows
    return db.add(iteration=iteration, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                  score=float(iteration), proposer="t")


class _Records(logging.Handler):
    """The store's log records; `on_warning` runs (on the logging thread) at the first warning."""

    def __init__(self, on_warning=None) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.on_warning = on_warning

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.levelno >= logging.WARNING and self.on_warning is not None:
            self.on_warning()
            self.on_warning = None


@pytest.fixture
def records():
    logger = logging.getLogger("evolve.storage.database")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _holder(path):
    """Another connection that holds the file's write lock until it commits."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_a_lock_held_past_sqlites_wait_is_retried_and_the_program_committed_once(tmp_path, records):
    path = tmp_path / "programs.db"
    db = ProgramDatabase(f"sqlite:///{path}", "c", config=DatabaseConfig(retry_seconds=6))
    _add(db, 0)
    holder = _holder(path)
    records.on_warning = lambda: holder.execute("COMMIT")  # let go once the store has said it waits
    program = _add(db, 1)
    rows = sqlite3.connect(path).execute("select id, iteration from programs order by id").fetchall()
    assert rows == [(1, 0), (program.id, 1)] and db.size == 2
    said = [r.getMessage() for r in records.records]
    assert len(said) == 2 and "is unreachable (database is locked); retrying for up to 6 s" in said[0]
    assert str(path) in said[0] and "answers again after" in said[1]
    db.close()


def test_a_lock_held_longer_than_retry_seconds_stops_with_one_line_and_nothing_half_written(tmp_path, records):
    path = tmp_path / "programs.db"
    db = ProgramDatabase(f"sqlite:///{path}", "c", config=DatabaseConfig(retry_seconds=2))
    _add(db, 0)
    holder = _holder(path)
    with pytest.raises(DatabaseUnavailable) as caught:
        _add(db, 1)
    line = str(caught.value)
    assert "\n" not in line and str(path) in line and "database is locked" in line and "retry_seconds=2" in line
    assert db.unavailable == "database is locked"
    with pytest.raises(DatabaseUnavailable):  # once given up, the next write fails at its first try
        db.record_stop("failed", line)
    holder.execute("COMMIT")
    _add(db, 2)  # answers again: writes go on, and the store says so
    assert db.unavailable is None and "answers again" in records.records[-1].getMessage()
    rows = sqlite3.connect(path).execute("select iteration from programs order by id").fetchall()
    assert rows == [(0,), (2,)]
    db.close()


def _campaign_file(path, programs=40):
    """A closed database with programs, calls, a migration and a stop."""
    db = ProgramDatabase(f"sqlite:///{path}", "c", "p")
    for i in range(programs):
        _add(db, i)
        db.record_call(iteration=i, parent_hash="h", messages=[{"role": "user", "content": "m" * 3000}],
                       response="r", model="m")
    db.record_migrations([(1, 2)], 3)
    db.record_stop("finished", "budget")
    db.close()
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"select * from {t} order by rowid").fetchall() for t in TABLES}


def test_a_truncated_file_is_one_line_naming_it_and_the_repair(tmp_path):
    path = tmp_path / "programs.db"
    _campaign_file(path)
    os.truncate(path, path.stat().st_size * 3 // 4)
    for read_only in (True, False):
        with pytest.raises(DatabaseCorrupt) as caught:
            ProgramDatabase(f"sqlite:///{path}", "c", read_only=read_only)
        line = str(caught.value)
        assert "\n" not in line and line.startswith(f"{path} is damaged (") and f"evolve repair {tmp_path}" in line
    (tmp_path / "other.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DatabaseCorrupt, match=r"other.db is damaged \(file is not a database\)"):
        ProgramDatabase(f"sqlite:///{tmp_path / 'other.db'}", "c", read_only=True)


def test_repair_saves_every_readable_row_as_it_was_and_keeps_the_damaged_file(tmp_path):
    path = tmp_path / "programs.db"
    before = _campaign_file(path)
    os.truncate(path, path.stat().st_size * 3 // 4)
    assert is_damaged(path) is not None
    salvage = repair(path)
    assert is_damaged(path) is None and salvage.damaged is not None and salvage.damaged.exists()
    assert salvage.damaged.name.startswith("programs.db.damaged-")
    with sqlite3.connect(path) as conn:
        after = {t: conn.execute(f"select * from {t} order by rowid").fetchall() for t in TABLES}
    for table in TABLES:
        assert set(after[table]) <= set(before[table]), table  # each row as it was, none made up
        assert salvage.saved[table] == len(after[table])
    assert len(after["campaigns"]) == 1 and 0 < len(after["programs"]) < len(before["programs"])
    db = ProgramDatabase(f"sqlite:///{path}", "c", read_only=True)  # a good file at this evolve's schema
    assert db.size == len(after["programs"])
    db.close()


def test_repair_of_an_intact_file_copies_every_row(tmp_path):
    path = tmp_path / "programs.db"
    before = _campaign_file(path, programs=5)
    salvage = repair(path)
    with sqlite3.connect(path) as conn:
        assert {t: conn.execute(f"select * from {t} order by rowid").fetchall() for t in TABLES} == before
    assert salvage.saved["programs"] == 5 and sum(salvage.skipped.values()) == 0


def test_a_write_waiting_on_the_writer_thread_is_committed_once_the_lock_is_let_go(tmp_path, records):
    import asyncio

    path = tmp_path / "programs.db"
    db = ProgramDatabase(f"sqlite:///{path}", "c", config=DatabaseConfig(retry_seconds=6))
    _add(db, 0)
    holder = _holder(path)
    released = threading.Event()

    def let_go():
        holder.execute("COMMIT")
        released.set()

    records.on_warning = let_go

    async def write():
        code = "y = 1\n"
        return await db.aadd(iteration=1, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                             score=1.0)

    program = asyncio.run(write())
    assert released.is_set() and db.get(program.id).code == "y = 1\n"
    assert sqlite3.connect(path).execute("select count(*) from programs").fetchone() == (2,)
    db.close()
