"""The program database at the scale of a long campaign: 100,000 programs shaped like a circle_packing run.

    .venv/bin/python benchmarks/database_scale.py [--programs 100000]    SQLite, and PostgreSQL when
                                                                        EVOLVE_TEST_POSTGRES_URL is set

The rows (code of 2-3 KB, metrics, features, one recorded prompt per iteration in `llm_calls`) are written
with bulk inserts, and the status tally kept as a controller keeps it (every 1,000 commits and at its stop);
then, measured: reopening the run (the store's indexes, the population and the scratchpad rebuilt:
everything a resumed campaign does before its first iteration), its CPU, RSS and the full rows it read, in a
fresh process; `evolve resume` to its first new iteration committed (wall, the controller's CPU, the set-up
it logs), then Ctrl-C (SIGINT) to its exit, report.html written at the stop (wall, the command's CPU);
choosing a parent (the population's `select` and the programs' `get_many`) and `add` (committing a child)
through the public API, median and p99; `evolve status` (in process, and the command's wall and CPU) and
`evolve best`; `evolve ui`'s first `/api/campaign` call (wall, the server's CPU for it, its RSS after it and
at its peak); the database's size per iteration. Targets: add and select at most 1 ms, reopening and resume
at most 5 s, Ctrl-C at most 2 s, status and best at most 1 s of CPU, the web view's first call at most 2 s
and 300 MB. On a loaded machine, read the CPU seconds beside the wall seconds (and say `uptime`).

--vacuum: on PostgreSQL, `VACUUM ANALYZE` after the bulk fill, as autovacuum leaves the tables of a campaign
that wrote its rows over hours (without it the first reader of 776 MB just written sets every row's hint
bits, and the planner has no statistics).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from evolve.config import Config
from evolve.observe.aggregates import checkpoint
from evolve.population import restore_population
from evolve.problems import get_problem
from evolve.program import ProgramStatus
from evolve.storage._orm import LLMCallRow, ProgramRow
from evolve.storage.rundir import open_database, write_config

INITIAL = (ROOT / "problems" / "circle_packing" / "initial.py").read_text()
STATUSES = [("valid", 0.45), ("invalid", 0.25), ("edit_failed", 0.15), ("duplicate", 0.08), ("similar", 0.05),
            ("proposal_failed", 0.02)]
SYSTEM = "You are an expert in computational geometry improving a circle packing program. " * 20
REOPEN = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from evolve.population import restore_population
from evolve.proposals.scratchpad import Scratchpad
from evolve.storage.database import ProgramDatabase
from evolve.storage.rundir import load_config, open_database
read = []
whole = ProgramDatabase._read_many
ProgramDatabase._read_many = lambda self, ids: read.extend(ids) or whole(self, ids)
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
config = load_config(sys.argv[1])
if sys.argv[2]:
    config.database.url = sys.argv[2]
before = rss()
started, spent = time.perf_counter(), cpu()
db = open_database(config, sys.argv[1])
population = restore_population(config, db, follow=True)
Scratchpad().restore(db)
chosen = population.select(0)
db.get_many([chosen.parent, *chosen.inspirations])
seconds, spent = time.perf_counter() - started, cpu() - spent
print(json.dumps({"seconds": seconds, "cpu": spent, "rss_mb": rss(), "rss_before_mb": before, "size": db.size,
                  "full_rows": len(read)}))
"""


def variant(rng: random.Random, i: int) -> str:
    """A circle_packing-like program of 2-3 KB, different for every i."""
    lines = INITIAL.splitlines()
    extra = [f"    # variant {i}: tweak {rng.random():.6f}"] * rng.randint(0, 10)
    return "\n".join(lines[:-1] + extra + [f"SEED_{i} = {rng.random()!r}", lines[-1]]) + "\n"


def fill(url: str, config: Config, run_dir: Path, n: int) -> None:
    """Write n programs and n recorded prompts with bulk inserts (not through `add`)."""
    with open_database(config, run_dir) as db:
        campaign = db.campaign_id
    rng = random.Random(0)
    engine = create_engine(url)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        from evolve.storage._orm import LLMMessagesRow
    except ImportError:  # the evolve before compact prompts
        LLMMessagesRow = None
    lengths = "code_length" in ProgramRow.__table__.columns
    codes = [variant(rng, i) for i in range(200)]
    batch, calls, blobs, call_ids = [], [], [], 0  # call ids follow the insertion order in an empty table
    valid_ids: list[int] = []
    for i in range(n):
        status = "valid" if i == 0 else rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        code = codes[i % len(codes)] + f"# {i}\n"
        parent = rng.choice(valid_ids[-500:]) if valid_ids else None
        row = dict(campaign_id=campaign, iteration=i, status=status, code=code, code_hash=uuid.uuid4().hex * 2,
                   score=rng.uniform(1.5, 2.63) if status == "valid" else None,
                   metrics={"sum_radii": rng.uniform(1.5, 2.63), "min_gap": rng.random(), "valid": status == "valid",
                            "radius_spread": rng.uniform(0, 0.6), "eval_ms": rng.uniform(10, 900)},
                   features={"radius_spread": rng.uniform(0, 0.6)}, feedback="sum of radii 2.1; all constraints hold",
                   error="" if status in ("valid", "duplicate") else "SEARCH block not found " * 10, parent_id=parent,
                   island=i % 4, generation=rng.randint(0, 40), proposer="offline", proposal="",
                   eval_seconds=rng.uniform(0.1, 2), propose_seconds=0.01, validation=None, prompt_tokens=4000,
                   completion_tokens=600, cost=0.001, choice="", canonical_hash=uuid.uuid4().hex * 2, mode="diff",
                   created_at=start + timedelta(seconds=2 * i))
        if lengths:
            row["code_length"] = len(code)
        batch.append(row)
        if status == "valid":
            valid_ids.append(i + 1)  # ids follow the insertion order in an empty table
        if i:
            messages = [{"role": "system", "content": SYSTEM},
                        {"role": "user", "content": "Parent:\n" + codes[(i + 1) % 200] + "\nInspirations:\n"
                         + "\n".join(codes[(i + k) % 200] for k in (3, 7, 11, 13)) + f"\nIteration {i}."}]
            call = dict(campaign_id=campaign, iteration=i, parent_hash=uuid.uuid4().hex * 2,
                        inspiration_hashes=[uuid.uuid4().hex * 2 for _ in range(4)], model="offline",
                        response="<<<<<<< SEARCH\n    x = 1\n=======\n    x = 2\n>>>>>>> REPLACE\n" * 8,
                        error="", prompt_tokens=4000, completion_tokens=600, cost=0.001, seconds=0.01,
                        created_at=start + timedelta(seconds=2 * i))
            if LLMMessagesRow is not None:
                call["messages"] = []
                blobs.append({"call_id": call_ids + len(calls) + 1,
                              "data": zlib.compress(json.dumps(messages).encode(), 6)})
            else:
                call["messages"] = messages
            calls.append(call)
        if len(batch) >= 5000 or i == n - 1:
            with engine.begin() as conn:
                conn.execute(insert(ProgramRow), batch)
                if calls:
                    conn.execute(insert(LLMCallRow), calls)
                if blobs:
                    conn.execute(insert(LLMMessagesRow), blobs)
            call_ids += len(calls)
            batch, calls, blobs = [], [], []
    engine.dispose()


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    return f"{statistics.median(ordered) * 1000:.3f} / {ordered[int(len(ordered) * 0.99)] * 1000:.3f}"


def _evolve() -> str:
    return str(Path(sys.executable).with_name("evolve"))


def _cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds (user and system) of a live process so far (with `children`: and of its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait(process: subprocess.Popen) -> float:
    """Wait for a child; return its CPU seconds (its own and its reaped children's)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def command(*args: str) -> str:
    """An `evolve` command's wall and CPU seconds: `wall (CPU)`."""
    t = time.perf_counter()
    process = subprocess.Popen([_evolve(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cpu = _wait(process)
    if process.returncode:
        raise RuntimeError(f"evolve {' '.join(args)} failed: {process.stderr.read().decode()}")
    return f"{time.perf_counter() - t:.2f} ({cpu:.2f})"


def resume_and_interrupt(run_dir: Path, n: int, url: str | None, db_url: str) -> dict[str, str]:
    """`evolve resume` until its first new iteration is committed (wall, and the controller's CPU), then
    Ctrl-C (SIGINT) until it exits (wall; CPU of the command and its children after the signal), with
    report.html written meanwhile."""
    overrides = [f"budget.iterations={n + 100_000}", "progress=off", "ray.start_after=1e9"]
    overrides += [f"database.url={url}"] if url else []
    engine = create_engine(db_url)
    newest = text("SELECT iteration FROM programs ORDER BY id DESC LIMIT 1")
    report = run_dir / "report.html"
    report.unlink(missing_ok=True)
    t = time.perf_counter()
    process = subprocess.Popen([_evolve(), "resume", str(run_dir), *overrides], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        while True:
            with engine.connect() as conn:
                if conn.execute(newest).scalar() >= n:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"evolve resume exited: {process.stderr.read().decode()}")
            time.sleep(0.02)
        first, first_cpu = time.perf_counter() - t, _cpu_of(process.pid)
        before = _cpu_of(process.pid, children=True)
        process.send_signal(signal.SIGINT)
        t = time.perf_counter()
        cpu = _wait(process) - before
        stop = time.perf_counter() - t
    finally:
        if process.poll() is None:
            process.kill()
        engine.dispose()
    log = (run_dir / "campaign.log").read_text()
    setup = log.rsplit("set-up took ", 1)[1].split(" ", 1)[0] if "set-up took " in log else "?"
    written = report.exists() and "report.html was not written" not in log.rsplit("set-up took ", 1)[-1]
    return {"resume to first new iteration s (CPU s; set-up s)": f"{first:.2f} ({first_cpu:.2f}; {setup})",
            "Ctrl-C to exit s (CPU s after it, report)": f"{stop:.2f} ({cpu:.2f}, "
                                                        f"{'written' if written else 'NOT written'})"}


def web_view(run_dir: Path) -> str:
    """`evolve ui`'s first `/api/campaign` call: wall, the server's CPU for it, its RSS after it."""
    process = subprocess.Popen([_evolve(), "ui", str(run_dir), "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"evolve ui did not start: {line}{process.stdout.read()}")
        url = line.split("evolve ui: ", 1)[1].split()[0].rstrip("/")
        before = _cpu_of(process.pid)
        t = time.perf_counter()
        with urllib.request.urlopen(f"{url}/api/campaign?run=0", timeout=600) as answer:
            points = len(json.loads(answer.read())["scores"]["id"])
        seconds, cpu = time.perf_counter() - t, _cpu_of(process.pid) - before
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss = {k: int(status.split(f"{k}:")[1].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return f"{seconds:.2f} ({cpu:.2f}; {rss['VmRSS']} MB, peak {rss['VmHWM']}; {points:,} points)"


def measure(label: str, url: str | None, n: int, vacuum: bool = False) -> dict[str, str]:
    run_dir = Path(tempfile.mkdtemp(prefix="evolve-scale-"))
    problem = get_problem("circle_packing")
    config = Config(problem=problem, name="scale")
    config.database.url = url
    write_config(config, run_dir)
    db_url = url or f"sqlite:///{run_dir / 'programs.db'}"
    started = time.perf_counter()
    fill(db_url, config, run_dir, n)
    with open_database(config, run_dir) as db:  # what a controller keeps every 1,000 commits and at its stop
        checkpoint(db)
    if vacuum and url is not None:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        engine.dispose()
    out = {"database": label + (" (vacuumed)" if vacuum and url else ""), "programs": f"{n:,}",
           "setup s": f"{time.perf_counter() - started:.0f}"}

    child = subprocess.run([sys.executable, "-c", REOPEN, str(run_dir), url or "", str(ROOT)], capture_output=True,
                           text=True, check=True)
    reopen = json.loads(child.stdout)
    out["reopen s (CPU s)"] = f"{reopen['seconds']:.2f} ({reopen['cpu']:.2f})"
    out["full rows read at reopen"] = f"{reopen['full_rows']}"
    out["RSS after reopen MB"] = f"{reopen['rss_mb']} ({reopen['rss_before_mb']} before)"
    out.update(resume_and_interrupt(run_dir, n, url, db_url))

    db = open_database(config, run_dir)
    population = restore_population(config, db, follow=True)
    times = []
    for k in range(5000):
        t = time.perf_counter()
        chosen = population.select(k % 4)
        db.get_many([chosen.parent, *chosen.inspirations])
        times.append(time.perf_counter() - t)
    out["select ms median / p99"] = percentiles(times)
    times = []
    rng = random.Random(1)
    for k in range(1000):
        parent = db.get(population.select(k % 4).parent)
        code = variant(rng, n + k)
        t = time.perf_counter()
        db.add(iteration=n + k, status=ProgramStatus.VALID, code=code, code_hash=uuid.uuid4().hex * 2,
               score=rng.uniform(1.5, 2.6), metrics={"sum_radii": 2.0}, features={"radius_spread": rng.random() * 0.6},
               parent=parent, island=k % 4, proposer="offline", cost=0.001)
        times.append(time.perf_counter() - t)
    out["add ms median / p99"] = percentiles(times)
    db.close()

    import evolve.cli.commands as cli

    try:  # status's own imports are timed with the command, not here
        import evolve.cli.status_view
    except ImportError:  # an evolve before it
        import evolve.observe.outcomes  # noqa: F401
    args = argparse.Namespace(run_dir=str(run_dir), json=False, watch=None)
    t = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        cli._status(args)
    out["status s (in process)"] = f"{time.perf_counter() - t:.2f}"
    out["`evolve status` s (CPU s)"] = command("status", str(run_dir))
    out["`evolve best` s (CPU s)"] = command("best", str(run_dir))
    out["web view first data call s (CPU s; RSS)"] = web_view(run_dir)
    if url is None:
        size = sum(p.stat().st_size for p in run_dir.glob("programs.db*"))
        out["database KB per iteration"] = f"{size / 1024 / n:.1f}"
    else:
        engine = create_engine(url)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        engine.dispose()
        out["database KB per iteration"] = f"{size / 1024 / n:.1f}"
    shutil.rmtree(run_dir, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--vacuum", action="store_true", help="PostgreSQL: VACUUM ANALYZE after the bulk fill")
    args = parser.parse_args()
    results = []
    if args.only != "postgresql":
        results.append(measure("SQLite", None, args.programs))
        print(json.dumps(results[-1]), flush=True)
    server = os.environ.get("EVOLVE_TEST_POSTGRES_URL")
    if server and args.only != "sqlite":
        name = f"evolve_scale_{os.getpid()}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            results.append(measure("PostgreSQL", make_url(server).set(database=name).render_as_string(False),
                                   args.programs, args.vacuum))
            print(json.dumps(results[-1]), flush=True)
        finally:
            for attempt in range(10):  # FORCE cannot end an autovacuum worker (not ours): it ends soon itself
                try:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    break
                except ProgrammingError:
                    if attempt == 9:
                        raise
                    time.sleep(3)
            admin.dispose()
    elif args.only != "sqlite":
        print("PostgreSQL: skipped (set EVOLVE_TEST_POSTGRES_URL, e.g. from scripts/postgres.sh)")
    keys = list(results[0]) if results else []
    print("| " + " | ".join(keys) + " |\n| " + " | ".join("---" for _ in keys) + " |")
    for row in results:
        print("| " + " | ".join(row[k] for k in keys) + " |")


if __name__ == "__main__":
    main()
