"""The run lock: one controller per run dir and per campaign row (on SQLite and PostgreSQL); a dead holder
never blocks for good."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from evolve.errors import RunLocked
from evolve.storage._orm import RunLockRow, make_engine
from evolve.storage.lock import RunLock, pid_alive

HOST = socket.gethostname()
HOLD = ("import sys, time; from evolve.storage.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(600)")


def _holder(run_dir):
    """A real process holding the run dir's lock until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _row(url, **values):
    engine = make_engine(url)
    with Session(engine) as s:
        s.add(RunLockRow(campaign="c", token="theirs", run_dir="/elsewhere", since="yesterday", **values))
        s.commit()
    engine.dispose()


def test_a_run_dir_has_one_holder_and_the_refusal_names_it(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(RunLocked, match=rf"in use by a running campaign \(pid {proc.pid} on host {HOST}, since "):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    lock = RunLock(tmp_path).acquire()  # the kernel released the dead holder's lock
    with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()  # a second holder in the same process is refused too
    lock.release()
    RunLock(tmp_path).acquire().release()


def test_a_database_row_of_a_live_holder_is_refused_and_a_stale_one_taken_over(tmp_path, database_url):
    url = database_url
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        _row(url, host=HOST, pid=sleeper.pid, heartbeat=time.time())
        with pytest.raises(RunLocked, match=f"/elsewhere is in use by a running campaign \\(pid {sleeper.pid} on "
                                            f"host {HOST}, since yesterday\\)"):
            RunLock(tmp_path / "a").claim(url, "c")
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()
        assert not pid_alive(sleeper.pid)
        lock = RunLock(tmp_path / "a")
        lock.claim(url, "c")  # the holder is dead: its row is stale at once, whatever its heartbeat
        engine = make_engine(url)
        with Session(engine) as s:
            assert s.scalars(select(RunLockRow.pid)).all() == [os.getpid()]
        lock.release()
        with Session(engine) as s:
            assert s.scalars(select(RunLockRow)).all() == []
        engine.dispose()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_row_from_another_host_is_stale_only_once_its_heartbeat_expires(tmp_path, database_url):
    url = database_url
    _row(url, host="elsewhere.example", pid=1, heartbeat=time.time())
    with pytest.raises(RunLocked, match=r"pid 1 on host elsewhere\.example"):
        RunLock(tmp_path).claim(url, "c")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(RunLockRow).values(heartbeat=time.time() - 61))
    engine.dispose()
    lock = RunLock(tmp_path)
    lock.claim(url, "c")
    lock.release()


def test_the_heartbeat_notices_a_takeover(tmp_path, database_url):
    url = database_url
    lock = RunLock(tmp_path, heartbeat_seconds=0.05)
    lock.claim(url, "c")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(RunLockRow).values(token="thief", host="elsewhere.example", pid=7))
    engine.dispose()
    deadline = time.monotonic() + 60
    while lock.lost is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.lost == "pid 7 on host elsewhere.example"
    lock.release()


def test_a_zombie_is_not_alive():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while pid_alive(proc.pid) and time.monotonic() < deadline:  # exited, not yet reaped: a zombie
        time.sleep(0.05)
    assert not pid_alive(proc.pid)
    proc.wait()
    assert pid_alive(os.getpid()) and not pid_alive(0)
