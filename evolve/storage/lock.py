"""One controller per run: a lock file in the run dir and a row in the run's database.

    lock = RunLock(run_dir).acquire()   flock on RUN_DIR/campaign.lock, which names the holder; the
                                        kernel releases it when the process dies, even by SIGKILL
    lock.claim(url, campaign)           a `run_locks` row (host, pid, heartbeat) in the database, for
                                        databases shared by run dirs or hosts (PostgreSQL)
    lock.release()

A row is stale when its holder is gone: on this host a pid that no longer runs, anywhere a heartbeat
older than `expire_seconds`. A stale row is taken over; a live holder is refused with `RunLocked`,
which names its host and pid.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

from evolve.errors import RunLocked
from evolve.storage.faults import describe

if TYPE_CHECKING:  # SQLAlchemy is imported only when a lock claims a database row
    from sqlalchemy.engine import Engine

__all__ = ["EXPIRE_SECONDS", "LOCK_FILE", "Holder", "RunLock", "file_holder", "holder_live", "pid_alive"]

LOCK_FILE = "campaign.lock"
EXPIRE_SECONDS = 60.0  # a row whose heartbeat is older than this is stale, whatever its host
_log = logging.getLogger("evolve.engine.campaign")


@dataclass(frozen=True)
class Holder:
    """Who holds a run: host, pid and since when (local time)."""

    host: str
    pid: int
    since: str = ""

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host}" + (f", since {self.since}" if self.since else "")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def holder_live(host: str, pid: int, heartbeat: float | None = None, expire_seconds: float = EXPIRE_SECONDS) -> bool:
    """Whether a holder still runs: on this host its pid, anywhere its heartbeat (when given) within
    `expire_seconds`."""
    fresh = heartbeat is None or time.time() - heartbeat < expire_seconds
    return fresh and (pid_alive(pid) if host == socket.gethostname() else True)


def file_holder(run_dir: str | Path) -> Holder | None:
    """Who the run dir's lock file names, without locking it (it is emptied when its holder releases it,
    and left as it was when its holder was killed): None when no one has held it or it was released."""
    try:
        data = json.loads((Path(run_dir) / LOCK_FILE).read_bytes() or b"null")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return Holder(str(data.get("host", "?")), int(data.get("pid", 0)), str(data.get("since", "")))


def _busy(run_dir: Path, holder: Holder | None) -> RunLocked:
    who = str(holder) if holder else "another process"
    stop = f"kill {holder.pid}" if holder and holder.host == socket.gethostname() else "stop it"
    return RunLocked(f"{run_dir} is in use by a running campaign ({who}); wait for it to end or {stop}, "
                     f"then `evolve resume {run_dir}`")


class RunLock:
    """The lock one campaign holds for its life: `acquire` (the run dir), `claim` (the database), `release`.

    Args:
        run_dir: the run's folder; its `campaign.lock` is created when missing and never removed.
        heartbeat_seconds: how often the database row's heartbeat is renewed.
        expire_seconds: a row whose heartbeat is older than this is stale, whatever its host.
    """

    def __init__(self, run_dir: str | Path, *, heartbeat_seconds: float = 10.0,
                 expire_seconds: float = EXPIRE_SECONDS) -> None:
        self.run_dir = Path(run_dir)
        self.holder = Holder(socket.gethostname(), os.getpid(), datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
        self.heartbeat_seconds, self.expire_seconds = heartbeat_seconds, expire_seconds
        self.lost: str | None = None  # set when another controller took the database row over
        self._fd: int | None = None
        self._engine: Engine | None = None
        self._campaign = ""
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the run dir ------------------------------------------------------------------------------
    def acquire(self) -> Self:
        """Lock the run dir, or raise `RunLocked` naming the live holder."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise _busy(self.run_dir, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(self.holder)).encode(), 0)
        self._fd = fd
        return self

    # -- the database -----------------------------------------------------------------------------
    def claim(self, url: str, campaign: str) -> None:
        """Hold `campaign`'s row in the database at `url`, taking over a stale one; heartbeat it."""
        from sqlalchemy import delete
        from sqlalchemy.exc import IntegrityError
        from sqlalchemy.orm import Session

        from evolve.storage._orm import RunLockRow, make_engine

        engine = make_engine(url, busy_seconds=5.0)  # a heartbeat that waits longer is late anyway
        holder: Holder | None = None
        try:
            for _ in range(5):
                with Session(engine) as s:
                    s.add(RunLockRow(campaign=campaign, host=self.holder.host, pid=self.holder.pid,
                                     token=self._token, run_dir=str(self.run_dir.resolve()), since=self.holder.since,
                                     heartbeat=time.time()))
                    try:
                        s.commit()
                        break
                    except IntegrityError:
                        s.rollback()
                    row = s.get(RunLockRow, campaign)
                    if row is None:
                        continue
                    holder = Holder(row.host, row.pid, row.since)
                    if self._live(row.host, row.pid, row.heartbeat):
                        raise _busy(Path(row.run_dir or self.run_dir), holder)
                    s.execute(delete(RunLockRow).where(RunLockRow.campaign == campaign,
                                                       RunLockRow.token == row.token))
                    s.commit()
                    _log.info("took over the run lock of %s from %s, which is gone", campaign, holder)
            else:
                raise _busy(self.run_dir, holder)
        except BaseException:
            engine.dispose()
            raise
        self._engine, self._campaign = engine, campaign
        self._thread = threading.Thread(target=self._beat, args=(engine,), name="evolve-run-lock", daemon=True)
        self._thread.start()

    def _live(self, host: str, pid: int, heartbeat: float) -> bool:
        return holder_live(host, pid, heartbeat, self.expire_seconds)

    def _beat(self, engine: Engine) -> None:
        from sqlalchemy import select, update

        from evolve.storage._orm import RunLockRow

        mine = (RunLockRow.campaign == self._campaign, RunLockRow.token == self._token)
        failing = False  # said once per outage (the store says the outage itself)
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                with engine.begin() as conn:
                    if conn.execute(update(RunLockRow).where(*mine).values(heartbeat=time.time())).rowcount:
                        if failing:
                            _log.info("run lock heartbeat renewed")
                        failing = False
                        continue
                    row = conn.execute(select(RunLockRow.host, RunLockRow.pid, RunLockRow.since)
                                       .where(RunLockRow.campaign == self._campaign)).first()
                self.lost = f"pid {row.pid} on host {row.host}" if row else "nobody"
                return
            except Exception as exc:  # noqa: BLE001 (a database briefly unreachable: try again at the next beat)
                if not failing:
                    _log.info("run lock heartbeat failed (%s); trying again every %g s", describe(exc),
                              self.heartbeat_seconds)
                failing = True

    # -- the end ----------------------------------------------------------------------------------
    def release(self) -> None:
        """Give up the row and the run dir (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._engine is not None:
            from sqlalchemy import delete

            from evolve.storage._orm import RunLockRow

            try:
                with self._engine.begin() as conn:
                    conn.execute(delete(RunLockRow).where(RunLockRow.campaign == self._campaign,
                                                          RunLockRow.token == self._token))
            except Exception as exc:  # noqa: BLE001 (the row goes stale on its own: the next holder takes it over)
                _log.info("could not release the run lock row (%s): it goes stale on its own", describe(exc))
            self._engine.dispose()
            self._engine = None
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> Holder | None:
    """The holder a lock file names; it may take a moment to write it after taking the lock."""
    for _ in range(40):
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"null")
        except ValueError:
            data = None
        if data:
            return Holder(str(data.get("host", "?")), int(data.get("pid", 0)), str(data.get("since", "")))
        time.sleep(0.05)
    return None
