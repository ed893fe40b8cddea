"""Database faults with real parts: a PostgreSQL cluster of the test's own stopped and started under a
running campaign, a connection dropped while its COMMIT is answered, a small tmpfs filled, a truncated
SQLite file. Each heals or speaks in one line; nothing committed is lost or evaluated twice. Nothing here
times the machine: the tests wait for what the campaign says (its log), never for seconds to pass."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from evolve.config import DatabaseConfig
from evolve.errors import DatabaseUnavailable
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage.database import ProgramDatabase
from tests.e2e.postgres_cluster import DroppingProxy, PrivateCluster
from tests.e2e.test_cli import evolve, rows

pytestmark = pytest.mark.e2e
# a campaign of local slots only (no Ray): quick, and the faults are the database's
LOCAL = ["problem=circle_packing", "seed=5", "ray.start_after=1000000"]


@pytest.fixture(scope="module")
def cluster():
    server = PrivateCluster()
    yield server
    server.close()


def _pg_rows(url: str) -> list[tuple]:
    """The programs' (id, iteration, status, code_hash) in commit order ([] before the schema exists)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not conn.execute(text("select to_regclass('programs')")).scalar():
                return []
            return [tuple(r) for r in conn.execute(text("select id, iteration, status, code_hash from programs "
                                                        "order by id"))]
    finally:
        engine.dispose()


def _add(db, iteration):
    code = f"x = {iteration}\n"
    return db.add(iteration=iteration, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                  score=float(iteration))


def _wait_for(predicate, proc: subprocess.Popen | None = None, limit: float = 240.0) -> None:
    """Poll `predicate` until it holds (the limit only ends a test that would hang)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the campaign ended first: {proc.communicate()}")
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.1)


def _once_each(found: list[tuple], budget: int) -> None:
    """The initial program and every iteration once; no program evaluated twice."""
    assert len(found) == budget + 1 and len({r[1] for r in found}) == budget + 1
    evaluated = [r[3] for r in found if r[2] in ("valid", "invalid")]
    assert len(evaluated) == len(set(evaluated)), "a program was evaluated twice"


def _no_traceback(stderr: str) -> None:
    """Only evolve's own lines: the run dir, its warnings and errors, a database that answers again, a signal."""
    own = ("evolve:", "run dir:", "interrupted by")
    assert "Traceback" not in stderr and all(line.startswith(own) or " answers again after " in line
                                             for line in stderr.splitlines() if line.strip()), stderr


# -- PostgreSQL ---------------------------------------------------------------------------------------
def test_a_write_during_a_postgresql_restart_waits_and_is_committed_once(cluster):
    url = cluster.database()
    db = ProgramDatabase(url, "c", config=DatabaseConfig(retry_seconds=600))
    _add(db, 0)
    said = threading.Event()

    class Said(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                said.set()

    logger = logging.getLogger("evolve.storage.database")
    logger.addHandler(handler := Said())
    try:
        cluster.stop()
        done: list = []
        writer = threading.Thread(target=lambda: done.append(_add(db, 1)))
        writer.start()
        _wait_for(said.is_set)  # the write met the outage and says it waits
        cluster.start()
        writer.join(600)
    finally:
        logger.removeHandler(handler)
    assert done and [r[1] for r in _pg_rows(url)] == [0, 1] and db.size == 2
    db.record_stop("finished", "done")  # the pool's dead connections are replaced: the next writes go on
    db.close()


def test_beyond_retry_seconds_a_postgresql_outage_is_one_line_and_the_store_recovers(cluster):
    url = cluster.database()
    db = ProgramDatabase(url, "c", config=DatabaseConfig(retry_seconds=1))
    _add(db, 0)
    cluster.stop()
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            _add(db, 1)
    finally:
        cluster.start()
    line = str(caught.value)
    assert "\n" not in line and "postgres@127.0.0.1" in line and "did not answer for" in line
    assert "Connection refused" in line or "terminating connection" in line or "closed" in line, line
    _add(db, 2)
    assert [r[1] for r in _pg_rows(url)] == [0, 2] and db.unavailable is None
    db.close()


def test_a_connection_lost_while_its_commit_is_answered_commits_the_program_once(cluster):
    url = cluster.database()
    proxy = DroppingProxy(cluster.port)
    db = ProgramDatabase(cluster.url(url.rsplit("/", 1)[1], port=proxy.port), "c",
                         config=DatabaseConfig(retry_seconds=120))
    try:
        _add(db, 0)
        proxy.arm()
        program = _add(db, 1)  # committed, but the client never heard so: its retry finds the row
        proxy.arm()
        db.record_call(iteration=1, parent_hash="h", messages=[{"role": "user", "content": "m"}], response="r")
        proxy.arm()
        db.record_migrations([(program.id, 1)], 1)
        proxy.arm()
        db.record_stop("finished", "done")
    finally:
        db.close()
        proxy.close()
    assert proxy.dropped == 4
    assert [r[1] for r in _pg_rows(url)] == [0, 1]
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = [conn.execute(text(f"select count(*) from {t}")).scalar()
                  for t in ("llm_calls", "llm_messages", "migrations", "stops")]
    engine.dispose()
    assert counts == [1, 1, 1, 1]


def test_a_campaign_goes_on_through_a_postgresql_restart(cluster, evolve_bin, cli_env, tmp_path):
    url, run_dir = cluster.database(), tmp_path / "run"
    proc = subprocess.Popen([evolve_bin, "run", *LOCAL, "budget.iterations=40", f"database.url={url}",
                             "database.retry_seconds=600", f"hydra.run.dir={run_dir}"],
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(_pg_rows(url)) >= 6, proc)
        before = _pg_rows(url)
        cluster.stop()
        log = run_dir / "campaign.log"
        _wait_for(lambda: "is unreachable" in log.read_text(), proc)  # a write met the outage
        cluster.start()
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    _no_traceback(err)
    assert "is unreachable" in err and "retrying for up to 600 s" in err and "answers again after" in err
    final = _pg_rows(url)
    assert final[: len(before)] == before
    _once_each(final, 40)


def test_a_campaign_past_retry_seconds_stops_in_one_line_and_resumes(cluster, evolve_bin, cli_env, tmp_path):
    url, run_dir = cluster.database(), tmp_path / "run"
    proc = subprocess.Popen([evolve_bin, "run", *LOCAL, "budget.iterations=30", f"database.url={url}",
                             "database.retry_seconds=2", f"hydra.run.dir={run_dir}"],
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(_pg_rows(url)) >= 6, proc)
        cluster.stop()
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.start()
    assert proc.returncode == 1, err
    _no_traceback(err)
    last = err.strip().splitlines()[-1]
    assert "did not answer for" in last and "postgres@127.0.0.1" in last and f"evolve resume {run_dir}" in last
    kept = _pg_rows(url)
    resumed = evolve(evolve_bin, cli_env, "resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    final = _pg_rows(url)
    assert final[: len(kept)] == kept
    _once_each(final, 30)


def test_ctrl_c_during_an_outage_ends_the_wait_and_resume_goes_on(cluster, evolve_bin, cli_env, tmp_path):
    url, run_dir = cluster.database(), tmp_path / "run"
    proc = subprocess.Popen([evolve_bin, "run", *LOCAL, "budget.iterations=30", f"database.url={url}",
                             "database.retry_seconds=3600", f"hydra.run.dir={run_dir}"],
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(_pg_rows(url)) >= 6, proc)
        cluster.stop()
        log = run_dir / "campaign.log"
        _wait_for(lambda: "is unreachable" in log.read_text(), proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)  # not the hour of database.retry_seconds
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.start()
    assert proc.returncode == 130, err
    _no_traceback(err)
    assert f"evolve resume {run_dir}" in err.strip().splitlines()[-1]
    kept = _pg_rows(url)
    resumed = evolve(evolve_bin, cli_env, "resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    final = _pg_rows(url)
    assert final[: len(kept)] == kept
    _once_each(final, 30)


# -- a SQLite file another process keeps locked -------------------------------------------------------
def _committed(db: Path) -> int:
    """Programs committed in a SQLite file (0 before its schema exists)."""
    try:
        return len(rows(db)) if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


def _hold(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_a_campaign_waits_for_a_locked_sqlite_file_and_commits_each_program_once(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    db = run_dir / "programs.db"
    proc = subprocess.Popen([evolve_bin, "run", *LOCAL, "budget.iterations=30", "database.retry_seconds=30",
                             f"hydra.run.dir={run_dir}"], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(lambda: _committed(db) >= 6, proc)
        before = rows(db)
        holder = _hold(db)
        _wait_for(lambda: "is unreachable (database is locked)" in (run_dir / "campaign.log").read_text(), proc)
        holder.execute("COMMIT")
        holder.close()
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    _no_traceback(err)
    assert "answers again after" in err
    final = rows(db)
    assert final[: len(before)] == before
    _once_each(final, 30)


def test_a_sqlite_file_locked_past_retry_seconds_stops_in_one_line_and_resumes(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    db = run_dir / "programs.db"
    proc = subprocess.Popen([evolve_bin, "run", *LOCAL, "budget.iterations=30", "database.retry_seconds=3",
                             f"hydra.run.dir={run_dir}"], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(lambda: _committed(db) >= 6, proc)
        holder = _hold(db)
        try:
            _, err = proc.communicate(timeout=600)
        finally:
            holder.execute("COMMIT")
            holder.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    _no_traceback(err)
    last = err.strip().splitlines()[-1]
    assert f"the database {db} did not answer for" in last and "database is locked" in last
    assert f"evolve resume {run_dir}" in last
    kept = rows(db)
    resumed = evolve(evolve_bin, cli_env, "resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    final = rows(db)
    assert final[: len(kept)] == kept
    _once_each(final, 30)


# -- a full disk --------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (mounting needs root), grown to 64 MiB by `grow()`: the space freed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)

    yield mount, grow
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_resume_goes_on_once_space_is_freed(small_disk, evolve_bin, cli_env):
    mount, grow = small_disk
    run_dir = mount / "run"
    out = evolve(evolve_bin, cli_env, "run", *LOCAL, "budget.iterations=200", f"hydra.run.dir={run_dir}")
    assert out.returncode == 1, out.stderr
    _no_traceback(out.stderr)
    errors = [line for line in out.stderr.splitlines() if line.startswith("evolve:")]
    assert len(errors) == 1 and errors[0].startswith(f"evolve: no space left for the database {run_dir}/programs.db")
    assert f"evolve resume {run_dir}" in errors[0]
    db = run_dir / "programs.db"
    kept = rows(db)
    assert 0 < len(kept) < 201
    grow()
    resumed = evolve(evolve_bin, cli_env, "resume", str(run_dir), f"budget.iterations={len(kept) + 10}")
    assert resumed.returncode == 0, resumed.stderr
    final = rows(db)
    assert final[: len(kept)] == kept
    _once_each(final, len(kept) + 10)


# -- a damaged SQLite file ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 20-iteration campaign on SQLite (copied by each test)."""
    from tests.conftest import EVOLVE

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    env = {**os.environ, "EVOLVE_DISABLE_PLUGINS": "1"}
    out = evolve(EVOLVE, env, "run", *LOCAL, "budget.iterations=20", f"hydra.run.dir={run_dir}")
    assert out.returncode == 0, out.stderr
    return run_dir


def test_a_truncated_database_is_one_line_from_every_command_and_repair_saves_the_rest(finished_run, evolve_bin,
                                                                                          cli_env, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    db = run_dir / "programs.db"
    before = rows(db)
    os.truncate(db, db.stat().st_size * 4 // 5)
    for verb in (["status"], ["status", "--json"], ["best"], ["report"], ["resume"], ["upgrade"]):
        out = evolve(evolve_bin, cli_env, verb[0], str(run_dir), *verb[1:])
        assert out.returncode == 1 and out.stderr.count("\n") == 1, (verb, out.stderr)
        assert out.stderr.startswith(f"evolve: {db} is damaged (") and f"`evolve repair {run_dir}`" in out.stderr

    out = evolve(evolve_bin, cli_env, "repair", str(run_dir))
    assert out.returncode == 0 and f"repaired {db}" in out.stdout, out.stderr
    saved = rows(db)
    assert len(saved) > 0 and set(saved) <= set(before)  # each row as it was
    assert f"saved 1 campaigns, {len(saved)} programs" in out.stdout
    assert list(run_dir.glob("programs.db.damaged-*"))
    status = evolve(evolve_bin, cli_env, "status", str(run_dir))
    assert status.returncode == 0 and status.stderr == "", status.stderr
    again = evolve(evolve_bin, cli_env, "repair", str(run_dir))
    assert again.returncode == 0 and "is not damaged" in again.stdout

    resumed = evolve(evolve_bin, cli_env, "resume", str(run_dir), "budget.iterations=25")
    assert resumed.returncode == 0, resumed.stderr
    final = rows(db)
    assert final[: len(saved)] == saved
    evaluated = [r[3] for r in final if r[2] in ("valid", "invalid")]
    assert len(evaluated) == len(set(evaluated)), "a saved program was evaluated again"


def test_a_file_that_is_not_a_database_is_one_line(finished_run, evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "programs.db").write_bytes(b"\0garbage" * 5000)
    out = evolve(evolve_bin, cli_env, "status", str(run_dir))
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "programs.db is damaged (file is not a database)" in out.stderr and "evolve repair" in out.stderr
