"""Database faults: which pass (retried), which stop a campaign, and the one line that names each.

    passing   a server down or restarting, a dropped connection, a SQLite file another process keeps
              locked: `Outages.run` retries with backoff for up to `database.retry_seconds`, saying so once
              per outage, then raises `DatabaseUnavailable`
    disk full SQLITE_FULL, PostgreSQL's 53100, OSError(ENOSPC): `DiskFull` at once
    damaged   SQLITE_CORRUPT, SQLITE_NOTADB: `DatabaseCorrupt`, naming the file and `evolve repair`

`watch(engine, url)` turns the last two into evolve's errors wherever SQLAlchemy meets them (a reader's query
as much as a write), so that every command says them in one line; `translate` makes the one line of any
other database error (the CLI's last resort).
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from evolve.errors import DatabaseCorrupt, DatabaseUnavailable, DiskFull, EvolveError

__all__ = ["Outages", "describe", "is_corrupt", "is_disk_full", "is_passing", "label", "translate", "watch"]

_log = logging.getLogger("evolve.storage.database")
T = TypeVar("T")
_FIRST_DELAY, _MAX_DELAY = 0.2, 5.0  # seconds between tries: doubled after each, up to the most
_PASSING_SQLITE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_PROTOCOL")
_DAMAGED_SQLITE = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_PG_DISK_FULL = "53100"


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrapper (or `exc` itself)."""
    return getattr(exc, "orig", None) or exc


def describe(exc: BaseException) -> str:
    """The first line of what the driver said, without SQLAlchemy's SQL and links."""
    inner = _driver_error(exc)
    text = str(inner).strip() or type(inner).__name__
    return " ".join(text.splitlines()[0].split())


def _sqlite_name(exc: BaseException) -> str:
    inner = _driver_error(exc)
    return getattr(inner, "sqlite_errorname", "") if isinstance(inner, sqlite3.Error) else ""


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` says a device is full: SQLite's SQLITE_FULL, PostgreSQL's disk_full, ENOSPC."""
    inner = _driver_error(exc)
    if isinstance(inner, OSError) and inner.errno == errno.ENOSPC:
        return True
    return _sqlite_name(exc) == "SQLITE_FULL" or getattr(inner, "sqlstate", None) == _PG_DISK_FULL


def is_corrupt(exc: BaseException) -> bool:
    """Whether `exc` says a SQLite file is damaged (malformed, or not a database at all)."""
    name = _sqlite_name(exc)
    return name.startswith(_DAMAGED_SQLITE) or (isinstance(_driver_error(exc), sqlite3.DatabaseError) and not name
                                                 and "malformed" in str(_driver_error(exc)))


def is_passing(exc: BaseException) -> bool:
    """Whether `exc` is a fault that may pass: a connection lost or refused, a server restarting, a lock held."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError) or is_disk_full(exc):
        return False
    if exc.connection_invalidated:
        return True
    inner = exc.orig
    if isinstance(inner, sqlite3.OperationalError):
        return _sqlite_name(exc).startswith(_PASSING_SQLITE) or "database is locked" in str(inner)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - a dependency
        return False
    return isinstance(inner, (psycopg.OperationalError, psycopg.InterfaceError))


def label(url: Any) -> str:
    """A database as messages name it: a SQLite file's path, else its URL without the password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        return path.removeprefix("file:")
    return parsed.render_as_string(hide_password=True)


def _run_dir(where: str) -> str:
    """The run dir of a database file named programs.db (the default), else a placeholder."""
    path = Path(where)
    return str(path.parent) if path.name == "programs.db" else "RUN_DIR"


def _corrupt(where: str, exc: BaseException) -> DatabaseCorrupt:
    return DatabaseCorrupt(f"{where} is damaged ({describe(exc)}): `evolve repair {_run_dir(where)}` copies "
                           "every readable program into a new file and keeps the damaged one beside it")


def _full(where: str, exc: BaseException) -> DiskFull:
    return DiskFull(f"no space left for the database {where} ({describe(exc)}); free some space")


def translate(exc: BaseException, where: str = "") -> EvolveError | None:
    """Evolve's error for a database fault (`DiskFull`, `DatabaseCorrupt`, `DatabaseUnavailable` for the rest
    of SQLAlchemy's database errors), or None for another exception."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, EvolveError):
        return exc
    where = where or getattr(exc, "evolve_database", "")  # named by `watch`
    if is_disk_full(exc):  # the database's device, or another file's (best.py, the report)
        if where and isinstance(exc, DBAPIError):
            return _full(where, exc)
        return DiskFull(f"no space left on the device ({describe(exc)}); free some space")
    if is_corrupt(exc):
        return _corrupt(where or "the database", exc)
    if isinstance(exc, DBAPIError):
        name = f"the database {where}" if where else "the database"
        if is_passing(exc):
            return DatabaseUnavailable(f"{name} is unreachable ({describe(exc)})")
        return DatabaseUnavailable(f"{name} failed: {describe(exc)}")
    return None


def watch(engine: Any, url: str) -> None:
    """Raise `DatabaseCorrupt` and `DiskFull` in place of SQLAlchemy's errors for those faults on `engine`."""
    from sqlalchemy import event

    where = label(url)

    @event.listens_for(engine, "handle_error")
    def _translate(context: Any) -> None:
        exc = context.original_exception
        if is_corrupt(exc):
            raise _corrupt(where, exc)
        if is_disk_full(exc):
            raise _full(where, exc)
        if context.sqlalchemy_exception is not None:  # the rest keep SQLAlchemy's type, and say which database
            context.sqlalchemy_exception.evolve_database = where


class Outages:
    """Retries a database's operations through passing faults; one per database, shared by its threads.

    An outage starts at the first failed try and ends at the next that succeeds: it is said once as a
    warning when it starts and once when it ends, and lasts at most `seconds` (then `DatabaseUnavailable`).
    After that (or `stop_waiting`), each operation is tried once, and the programs queued on a writer not at
    all, until one succeeds again: the stop is recorded if it can be, and the tear-down does not wait again.
    """

    def __init__(self, url: str, seconds: float) -> None:
        self.where = label(url)
        self.seconds = seconds
        self.cause: str | None = None  # what the outage under way began with (None while the database answers)
        self.given_up = False  # the outage outlasted `seconds`, or `stop_waiting`: a failed try is the last
        self._since = 0.0  # monotonic start of the outage under way
        self._lock = threading.Lock()
        self._hurry = threading.Event()  # `stop_waiting`: wakes the tries that wait
        self._verdict = ""  # the line of the last give-up, said again by what fails without a try after it

    def run(self, attempt: Callable[[bool], T], *, after_giving_up: bool = True) -> T:
        """Return `attempt(again)`, retried with backoff while it fails with a passing fault; `again` is True
        after a failed try, whose commit may have happened all the same (a connection lost during COMMIT):
        an attempt that writes checks for its row first then. Once given up, an operation is tried once, or
        not at all (`after_giving_up=False`: the programs queued on a writer, each try of which could wait)."""
        if not after_giving_up and self.given_up and self.cause is not None:
            raise DatabaseUnavailable(self._verdict or f"the database {self.where} is unreachable ({self.cause})")
        delay, again, started = _FIRST_DELAY, False, time.monotonic()
        while True:
            try:
                result = attempt(again)
            except Exception as exc:
                if not is_passing(exc):
                    raise
                left = self._failed(exc, started)
                if left <= 0:
                    raise self._give_up(exc) from exc
                self._hurry.wait(min(delay, left))
                delay, again = min(2 * delay, _MAX_DELAY), True
                continue
            if self.cause is not None:
                self._answered()
            return result

    def _failed(self, exc: BaseException, started: float) -> float:
        """Note a failed try of an operation `started` then (a try may wait itself: SQLite's busy timeout); return
        the seconds left to the outage (0 once given up)."""
        now = time.monotonic()
        with self._lock:
            if self.cause is None:
                self.cause, self._since = describe(exc), started
                if self.seconds > 0 and not self.given_up:
                    _log.warning("the database %s is unreachable (%s); retrying for up to %g s "
                                 "(database.retry_seconds)", self.where, self.cause, self.seconds)
            return 0.0 if self.given_up else self._since + self.seconds - now

    def stop_waiting(self) -> None:
        """Make the tries under way and to come end at their next failure (a signal stops the campaign)."""
        with self._lock:
            self.given_up = True
        self._hurry.set()

    def _give_up(self, exc: BaseException) -> DatabaseUnavailable:
        with self._lock:
            waited = time.monotonic() - self._since
            self.given_up = True
        if self._hurry.is_set():
            return DatabaseUnavailable(f"the database {self.where} is unreachable ({describe(exc)})")
        if not self._verdict:
            self._verdict = (f"the database {self.where} did not answer for {waited:.0f} s "
                             f"(database.retry_seconds={self.seconds:g}): {describe(exc)}")
        return DatabaseUnavailable(self._verdict)

    def _answered(self) -> None:
        with self._lock:
            if self.cause is None:
                return
            waited = time.monotonic() - self._since
            self.cause, self._verdict = None, ""
            self.given_up = self._hurry.is_set()
        _log.info("the database %s answers again after %.1f s", self.where, waited, extra={"terminal": True})
