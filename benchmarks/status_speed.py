"""How long the read-only verbs take on a finished run: `evolve status` (text and `--json`), `evolve best`.

    .venv/bin/python benchmarks/status_speed.py [--programs 1000 100000] [--keep DIR] [--repeats 5] [--postgres]

Each run dir is filled like `database_scale.py` fills one (programs shaped like a circle_packing run, one
recorded prompt per iteration), once: with `--keep DIR` the run dirs stay there and later calls reuse them. A
run is recorded as finished when this evolve records how campaigns end. Where this evolve keeps a tally of the
status figures (`evolve.observe.aggregates.checkpoint`), each size is measured three ways: as a campaign
leaves it when it stops (the tally counts every row), as a running campaign has it at worst (the tally
`CHECKPOINT_EVERY` rows behind), and without one (a database of an older evolve: every row is read). With
`--postgres` the same runs are measured again with their database on the PostgreSQL server of
`EVOLVE_TEST_POSTGRES_URL` (one database per size, `evolve_status_N`, kept for later calls like the run dirs).
Measured: the wall time of each command as a user runs it (a fresh process: imports, config, database), median
of `--repeats`, with its CPU time (user + system: on a shared, loaded machine the wall time says more about
the neighbours), and the modules the status path imports. Target: under 1 s at 1,000 programs, about 1 s at
100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from database_scale import fill
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from evolve.config import Config
from evolve.problems import get_problem
from evolve.storage.rundir import open_database, write_config

# the command as `python -m evolve.cli.commands` of this checkout (the console script would run the installed one):
# a copy of an older evolve (`git archive`) with this file in its benchmarks/ measures that evolve
EVOLVE = [sys.executable, "-m", "evolve.cli.commands"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
HEAVY = ("ray", "openai", "hydra", "alembic", "httpx", "numpy")
IMPORTED = """
import io, contextlib, json, sys
from evolve.cli.commands import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(["status", sys.argv[1]])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY and "." not in m)))
""".replace("HEAVY", repr(HEAVY))


def postgres_database(server: str, n: int, reuse: bool) -> tuple[str, bool]:
    """The URL of database `evolve_status_N` on the server (made afresh unless `reuse` and it exists), and
    whether it is new (empty)."""
    name = f"evolve_status_{n}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = bool(conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}))
            if exists and not reuse:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            if not (exists and reuse):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server).set(database=name).render_as_string(False), not (exists and reuse)


def run_dir(base: Path, n: int, server: str | None = None) -> Path:
    """A finished run of `n` programs under `base` (made once), its database in the run dir or, given a
    PostgreSQL server, in database `evolve_status_N` there."""
    path = base / (f"run-{n}" if server is None else f"run-{n}-postgresql")
    made = (path / "config.yaml").is_file()
    if server is None:
        url, empty = f"sqlite:///{path / 'programs.db'}", not (made and (path / "programs.db").is_file())
    else:
        url, empty = postgres_database(server, n, reuse=made)
    if not empty:
        return path
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("programs.db*"):  # a fill that did not finish
        stale.unlink()
    config = Config(problem=get_problem("circle_packing"), name=f"status-{n}")
    if server is not None:
        config.database.url = url
    write_config(config, path)
    started = time.perf_counter()
    fill(url, config, path, n)
    with open_database(config, path) as db:
        record = getattr(db, "record_stop", None)  # how campaigns end, where this evolve records it
        if record is not None:
            record("finished", f"budget.iterations={n - 1} reached")
    print(f"filled {path} with {n:,} programs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def keep_tally(path: Path, how: str) -> bool:
    """Leave the run's kept tally as `how` says (`stopped`, `behind`, `none`); False for an evolve without."""
    try:
        from evolve.observe import aggregates
        from evolve.storage._orm import TallyRow
    except ImportError:
        return False
    from sqlalchemy import delete

    from evolve.storage.rundir import load_config

    with open_database(load_config(path, find_problem=False), path) as db:
        if how == "none":
            with db.connect() as conn, conn.begin():
                conn.execute(delete(TallyRow).where(TallyRow.campaign_id == db.campaign_id))
        else:
            last = aggregates.tally(db).upto
            aggregates.checkpoint(db, until=last - aggregates.CHECKPOINT_EVERY if how == "behind" else None)
    return True


def wall(args: list[str], repeats: int) -> str:
    """Median wall seconds of a command (range), and its median CPU seconds (user + system), which a loaded
    machine inflates less."""
    times, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([*EVOLVE, *args], capture_output=True, check=True, env=ENV, cwd=ROOT)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return f"{statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f}); CPU {statistics.median(cpu):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--keep", type=Path, help="keep the run dirs here and reuse them")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", action="store_true",
                        help="also on PostgreSQL (EVOLVE_TEST_POSTGRES_URL, e.g. from scripts/postgres.sh)")
    args = parser.parse_args()
    import tempfile

    base = args.keep or Path(tempfile.mkdtemp(prefix="evolve-status-"))
    server = os.environ.get("EVOLVE_TEST_POSTGRES_URL")
    if args.postgres and not server:
        parser.error("--postgres needs EVOLVE_TEST_POSTGRES_URL (e.g. export it from scripts/postgres.sh)")
    databases = [("SQLite", None)] + ([("PostgreSQL", server)] if args.postgres else [])
    rows = []
    for (database, url), n in ((d, n) for d in databases for n in args.programs):
        path = run_dir(base, n, url)
        has_json = "--json" in subprocess.run([*EVOLVE, "status", "--help"], capture_output=True, text=True,
                                              env=ENV, cwd=ROOT, check=False).stdout
        row = {"database": database, "programs": f"{n:,}"}
        for how, label in (("behind", "running, tally 1,000 rows behind"), ("none", "no tally kept"),
                           ("stopped", "stopped")):
            if keep_tally(path, how) or how == "stopped":
                row[f"`evolve status` s ({label})"] = wall(["status", str(path)], args.repeats)
        row["`status --json` s"] = wall(["status", "--json", str(path)], args.repeats) if has_json else "-"
        row["`evolve best` s"] = wall(["best", str(path)], args.repeats)
        imported = subprocess.run([sys.executable, "-c", IMPORTED, str(path)], capture_output=True, text=True,
                                  check=True, cwd=ROOT, env=ENV)
        row["heavy modules imported"] = ", ".join(json.loads(imported.stdout.splitlines()[-1])) or "none"
        row["load average"] = f"{os.getloadavg()[0]:.1f}"
        print(json.dumps(row), flush=True)
        rows.append(row)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n| " + " | ".join("---" for _ in keys) + " |")
    for row in rows:
        print("| " + " | ".join(row[k] for k in keys) + " |")


if __name__ == "__main__":
    main()
