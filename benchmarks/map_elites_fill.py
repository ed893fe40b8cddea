"""MAP-Elites coverage: the cells filled per island after a campaign, read back from its run dir.

    .venv/bin/python benchmarks/map_elites_fill.py --problem warehouse_tsp --iterations 1000 --seeds 0 1 2
    .venv/bin/python benchmarks/map_elites_fill.py runs/warehouse_tsp/2026-...  [RUN_DIR ...]

The first form runs one campaign per seed (`evolve run`, the default offline engine; `--set KEY=VALUE`
adds overrides) under `--out` and counts its cells; the second counts finished runs only. The population
is rebuilt from the store with the run's own config (`evolve.population.restore_population`), as a resumed
campaign would rebuild it. Prints a table, and the rows as JSON with `--json`. Target (issue 22): at least
40% of the cells filled on every island after 1,000 warehouse iterations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from evolve.population import restore_population
from evolve.storage.rundir import load_config, open_database

ROOT = Path(__file__).resolve().parents[1]


def count(run_dir: Path) -> dict:
    """The cells filled per island of one run, with its grid's size and its valid programs."""
    config = load_config(run_dir)
    with open_database(config, run_dir, read_only=True) as db:
        population = restore_population(config, db)
        valid = sum(1 for _ in db.members())
    size = math.prod(d.bins for d in config.problem.features)
    filled = [len(grid) for grid in population.grids()]
    return {"run_dir": str(run_dir), "problem": config.problem.name, "seed": config.seed,
            "iterations": db.iterations, "valid": valid,
            "features": [f.name + (" (adaptive)" if f.adaptive else "") for f in config.problem.features],
            "cells": size, "filled": filled, "min_share": min(filled) / size if filled and size else 0.0}


def run(problem: str, iterations: int, seed: int, out: Path, overrides: list[str]) -> Path:
    """Run one campaign in its own folder under `out`; its run dir."""
    folder = out / f"{problem}-{iterations}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("evolve")), "run", f"problem={problem}",
               f"budget.iterations={iterations}", f"seed={seed}", "progress=off", *overrides]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    subprocess.run(command, cwd=folder, check=True, env={**os.environ, "PYTHONPATH": path})
    [run_dir] = sorted((folder / "runs" / problem).iterdir())[-1:]
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="*", type=Path, help="finished run dirs to count (no campaign is run)")
    parser.add_argument("--problem", default="warehouse_tsp")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every campaign (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="where campaigns run (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    run_dirs = list(args.run_dirs)
    if not run_dirs:
        out = args.out or Path(tempfile.mkdtemp(prefix="map-elites-fill-"))
        run_dirs = [run(args.problem, args.iterations, seed, out, args.overrides) for seed in args.seeds]
    rows = [count(d) for d in run_dirs]
    print("| problem | seed | iterations | valid | features | cells filled per island | min share |")
    print("| --- | ---: | ---: | ---: | --- | --- | ---: |")
    for r in rows:
        filled = " ".join(f"{n}/{r['cells']}" for n in r["filled"])
        print(f"| {r['problem']} | {r['seed']} | {r['iterations']} | {r['valid']} | {', '.join(r['features'])} | "
              f"{filled} | {100 * r['min_share']:.0f}% |")
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
