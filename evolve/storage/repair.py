"""Salvage a damaged SQLite program database into a new file (`evolve repair RUN_DIR`).

    damaged file ──(sqlite3 CLI `.recover`, where installed)──▶ a readable copy
                 ──table by table, rowid range by range, skipping what raises──▶ a new file at the head schema

The damaged file is kept beside the new one as `<name>.damaged-<timestamp>` (its -wal and -shm with it, so
that SQLite still reads them together). Rows whose campaign, call or program was lost are dropped (the
foreign keys say so); the status tally and the run lock are not copied: both are rebuilt by the next run.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Salvage", "is_damaged", "repair"]

# what is copied, parents first (the foreign keys of the new file check each row against what came before)
TABLES = ("campaigns", "programs", "llm_calls", "llm_messages", "migrations", "stops")


@dataclass
class Salvage:
    """What `repair` saved: rows per table, the damaged file's new name and how the rows were read."""

    saved: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # rows read but refused (their parent was lost)
    damaged: Path | None = None
    method: str = ""


def is_damaged(path: Path) -> str | None:
    """What SQLite's quick_check says is wrong with the file (None: nothing)."""
    try:
        with sqlite3.connect(path) as conn:
            found = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if found == ["ok"] else "; ".join(found)


def repair(path: Path) -> Salvage:
    """Copy every readable row of the SQLite file `path` into a new file that takes its place; the damaged
    one is kept beside it. Restores the damaged file where it was when the new one cannot be written."""
    path = Path(path)
    damaged = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    moved = _move(path, damaged)
    fresh = path.with_name(f"{path.name}.repairing")
    try:
        salvage = _salvage(damaged, fresh)
        os.replace(fresh, path)
    except BaseException:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{fresh}{suffix}").unlink(missing_ok=True)
        for old, new in moved:
            os.replace(new, old)
        raise
    salvage.damaged = damaged
    return salvage


def _move(path: Path, to: Path) -> list[tuple[Path, Path]]:
    """Rename the file and its -wal and -shm (SQLite pairs them by name); return what moved."""
    moved = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        old, new = Path(f"{path}{suffix}"), Path(f"{to}{suffix}")
        if old.exists():
            os.replace(old, new)
            moved.append((old, new))
    return moved


def _salvage(damaged: Path, fresh: Path) -> Salvage:
    from evolve.storage._orm import make_engine

    make_engine(f"sqlite:///{fresh}").dispose()  # the head schema, stamped
    with tempfile.TemporaryDirectory(prefix="evolve-repair-") as scratch:
        recovered = _recover(damaged, Path(scratch) / "recovered.db")
        salvage = Salvage(method="sqlite3 .recover, then row by row" if recovered else "row by row")
        source = sqlite3.connect(f"file:{recovered or damaged}?mode=ro", uri=True)
        target = sqlite3.connect(fresh)
        try:
            # a truncated file's header counts more pages than it has: SQLite refuses it whole unless its schema
            # is writable (it then reads the pages that are there); nothing is written through this connection
            source.execute("PRAGMA writable_schema=ON")
            target.execute("PRAGMA foreign_keys=ON")
            for table in TABLES:
                columns = _common_columns(source, target, table)
                saved = skipped = 0
                if columns:
                    saved, skipped = _copy(source, target, table, columns)
                salvage.saved[table], salvage.skipped[table] = saved, skipped
            target.commit()
        finally:
            source.close()
            target.close()
    return salvage


def _recover(damaged: Path, to: Path) -> Path | None:
    """SQLite's own `.recover` of the file into `to`, where the sqlite3 command-line tool has it; else None."""
    tool = shutil.which("sqlite3")
    if tool is None:
        return None
    try:
        dump = subprocess.run([tool, str(damaged), ".recover"], capture_output=True, timeout=3600, check=False)
        if dump.returncode != 0 or dump.stderr.strip() or not dump.stdout:
            return None  # a build without the sqlite_dbpage table (Debian's) fails: "SQL logic error"
        load = subprocess.run([tool, str(to)], input=dump.stdout, capture_output=True, timeout=3600, check=False)
        if load.returncode != 0:
            return None
        with sqlite3.connect(f"file:{to}?mode=ro", uri=True) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except (OSError, subprocess.SubprocessError, sqlite3.Error):
        return None
    return to if {"campaigns", "programs"} <= tables else None


def _common_columns(source: sqlite3.Connection, target: sqlite3.Connection, table: str) -> list[str]:
    """The columns the damaged file's table shares with the new schema (none when it cannot be read)."""
    try:
        have = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")')]
    except sqlite3.DatabaseError:
        return []
    want = {row[1] for row in target.execute(f'PRAGMA table_info("{table}")')}
    return [c for c in have if c in want]


def _copy(source: sqlite3.Connection, target: sqlite3.Connection, table: str, columns: list[str]) -> tuple[int, int]:
    """Insert every readable row of `table`; return (saved, refused by the new file's constraints)."""
    names = ", ".join(f'"{c}"' for c in columns)
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    saved = skipped = 0
    for row in _readable(source, table, names):
        try:
            target.execute(insert, row)
            saved += 1
        except sqlite3.DatabaseError:  # its campaign, call or program was lost, or the row itself is garbled
            skipped += 1
    return saved, skipped


def _readable(conn: sqlite3.Connection, table: str, names: str) -> Iterator[tuple]:
    """The rows of `table` (columns `names`) that can be read, in rowid order. A scan stops at a page that
    is lost; the next rowid whose page can be reached is then found by seeking (doubling steps, then halving
    them) and the scan goes on from there; a row whose own content cannot be read is skipped."""
    scan = f'SELECT rowid, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid'
    after = _LOWEST  # every readable row after this rowid is still to come
    while True:
        try:
            for rowid, *values in conn.execute(scan, (after,)):
                if rowid <= after:  # a page past the end reads as zeros: rowid 0 again, and the scan would loop
                    raise sqlite3.DatabaseError(f"rowid {rowid} after {after}")
                after = rowid
                yield tuple(values)
            return
        except sqlite3.DatabaseError:
            pass
        try:
            found = _next_rowid(conn, table, after)
        except sqlite3.DatabaseError:  # seeking past `after` meets a lost page
            found = after
        else:
            if found is None:  # the end
                return
            after = found  # its page is there, its content is not (an overflow page lost): skip the row
            continue
        low, step = found, 1  # find where the pages can be reached again: doubling steps, then halving them
        while True:
            high = min(low + step, _HIGHEST)
            if _reachable(conn, table, high):
                break
            if high == _HIGHEST:
                return  # the table's right edge is lost
            low, step = high, 2 * step
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if _reachable(conn, table, middle) else (middle, high)
        after = high  # a row `high` lies on a lost page; the rows after it can be reached


_LOWEST, _HIGHEST = -(2 ** 63), 2 ** 63 - 1


def _next_rowid(conn: sqlite3.Connection, table: str, after: int) -> int | None:
    """The first rowid after `after` (None past the last); raises when the page it is on cannot be read or
    reads as garbage (a rowid that is not after `after`)."""
    row = conn.execute(f'SELECT rowid FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT 1', (after,)).fetchone()
    if row and row[0] <= after:
        raise sqlite3.DatabaseError(f"rowid {row[0]} after {after}")
    return row[0] if row else None


def _reachable(conn: sqlite3.Connection, table: str, after: int) -> bool:
    """Whether the page of the first rowid after `after` can be read."""
    try:
        _next_rowid(conn, table, after)
    except sqlite3.DatabaseError:
        return False
    return True
