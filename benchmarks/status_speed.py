"""How long the read-only verbs take on a finished run: `evolve status` (text and `--json`), `evolve best`.

    .venv/bin/python benchmarks/status_speed.py [--programs 1000 100000] [--keep DIR] [--repeats 5]

Each run dir is filled like `database_scale.py` fills one (programs shaped like a circle_packing run, one
recorded prompt per iteration), once: with `--keep DIR` the run dirs stay there and later calls reuse them.
A run is recorded as finished when this evolve records how campaigns end. Measured: the wall time of
each command as a user runs it (a fresh process: imports, config, database), median of `--repeats`, with
its CPU time (user + system: on a shared, loaded machine the wall time says more about the neighbours),
and the modules the status path imports. Target: under 1 s at 1,000 programs, about 1 s at 100,000.
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

from evolve.config import Config
from evolve.problems import get_problem
from evolve.rundir import open_database, write_config

# the command as `python -m evolve.cli` of this checkout (the console script would run the installed one):
# a copy of an older evolve (`git archive`) with this file in its benchmarks/ measures that evolve
EVOLVE = [sys.executable, "-m", "evolve.cli"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
HEAVY = ("ray", "openai", "hydra", "alembic", "httpx", "numpy")
IMPORTED = """
import io, contextlib, json, sys
from evolve.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(["status", sys.argv[1]])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY and "." not in m)))
""".replace("HEAVY", repr(HEAVY))


def run_dir(base: Path, n: int) -> Path:
    """A finished run of `n` programs under `base` (made once)."""
    path = base / f"run-{n}"
    if (path / "programs.db").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    config = Config(problem=get_problem("circle_packing"), name=f"status-{n}")
    write_config(config, path)
    started = time.perf_counter()
    fill(f"sqlite:///{path / 'programs.db'}", config, path, n)
    with open_database(config, path) as db:
        record = getattr(db, "record_stop", None)  # how campaigns end, where this evolve records it
        if record is not None:
            record("finished", f"budget.iterations={n - 1} reached")
    print(f"filled {path} with {n:,} programs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


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
    args = parser.parse_args()
    import tempfile

    base = args.keep or Path(tempfile.mkdtemp(prefix="evolve-status-"))
    rows = []
    for n in args.programs:
        path = run_dir(base, n)
        has_json = "--json" in subprocess.run([*EVOLVE, "status", "--help"], capture_output=True, text=True,
                                              env=ENV, cwd=ROOT, check=False).stdout
        row = {"programs": f"{n:,}", "`evolve status` s": wall(["status", str(path)], args.repeats),
               "`status --json` s": wall(["status", "--json", str(path)], args.repeats) if has_json else "-",
               "`evolve best` s": wall(["best", str(path)], args.repeats)}
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
