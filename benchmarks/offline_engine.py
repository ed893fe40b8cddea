"""What the offline engine finds: campaigns per problem and seed, read back from each run's programs.db.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/offline_engine.py --iterations 1000 --seeds 0 1 2
    PYTHONPATH=/other/tree .venv/bin/python benchmarks/offline_engine.py --repo /other/tree   # another engine

Runs `evolve run problem=P budget.iterations=N seed=S` in `--repo` (default: this tree), scores each run's
best program on the test data (`evolve check --test`, problems with test data), and prints a table and a
JSON file: best on train, the test score (warehouse_tsp: the share of the seed-to-optimum headroom captured,
1 - best gap / seed gap, both on test), the duplicate share of proposals, the invalid share of evaluated
children, and per move kind (from each proposal's `choice`) how many proposals were applied,
valid and improved on their parent (a proposal of two moves counts
for each). The machine's load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

EVALUATED = ("valid", "invalid", "evaluator_error")
DUPLICATES = ("duplicate", "similar")
UNAPPLIED = ("edit_failed", "proposal_failed")


def _kinds(choice: str, proposal: str) -> list[str]:
    """The move kinds of a proposal: its recorded choice (`constant+term`), else (older engines) the notes of
    its text (`Offline mutation: constant 1 -> 2; crossover of ...`)."""
    if choice:
        return choice.split("+")
    notes = proposal.split("\n", 1)[0].removeprefix("Offline mutation: ").split("; ")
    return [note.split()[0] if note.strip() else "?" for note in notes]


def read_run(run_dir: Path) -> dict:
    """Shares and per-kind counts of one run's programs."""
    db = sqlite3.connect(f"file:{run_dir / 'programs.db'}?mode=ro", uri=True)
    rows = db.execute("select p.status, p.choice, p.proposal, p.score, q.score from programs p "
                      "left join programs q on q.id = p.parent_id where p.proposer != 'initial'").fetchall()
    best = db.execute("select max(score) from programs where status = 'valid'").fetchone()[0]
    initial = db.execute("select score from programs where proposer = 'initial'").fetchone()[0]
    statuses = Counter(row[0] for row in rows)
    kinds: dict[str, Counter] = defaultdict(Counter)
    for status, choice, proposal, score, parent_score in rows:
        for kind in _kinds(choice, proposal):  # a proposal of two moves counts for each
            counts = kinds[kind]
            counts["proposed"] += 1
            counts["applied"] += status not in UNAPPLIED
            counts["duplicate"] += status in DUPLICATES
            counts["valid"] += status == "valid"
            counts["improved"] += status == "valid" and parent_score is not None and score > parent_score
    evaluated = sum(statuses[s] for s in EVALUATED)
    return {"initial": initial, "best_train": best, "statuses": dict(statuses),
            "duplicate_share": sum(statuses[s] for s in DUPLICATES) / max(1, len(rows)),
            "invalid_share": (statuses["invalid"] + statuses["evaluator_error"]) / max(1, evaluated),
            "kinds": {k: dict(v) for k, v in sorted(kinds.items())}}


def _evolve(repo: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(repo))
    return subprocess.run([str(Path(sys.executable).with_name("evolve")), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=timeout, check=True)


def test_score(repo: Path, problem: str, run_dir: Path) -> dict | None:
    """The run's best program scored on the test data (None: the problem has none)."""
    try:
        _evolve(repo, "check", f"problem={problem}", "--test", str(run_dir), timeout=1800)
    except subprocess.CalledProcessError:
        return None
    record = run_dir / "test_result.json"
    return json.loads(record.read_text()) if record.is_file() else None


def seed_test_gap(repo: Path, problem: str, out: Path) -> float | None:
    """The initial program's mean gap to the optimum on the test data (warehouse_tsp), scored once."""
    run_dir = out / f"{problem}-initial"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text("")
    (run_dir / "campaign.log").write_text("")
    initial = repo / "problems" / problem / "initial.py"
    (run_dir / "best.py").write_text(initial.read_text())
    result = test_score(repo, problem, run_dir)
    return (result or {}).get("metrics", {}).get("gap_to_optimum_pct")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--problems", nargs="+", default=["circle_packing", "warehouse_tsp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs and results.json")
    parser.add_argument("overrides", nargs="*", help="further `evolve run` overrides, e.g. llm.max_edits=3")
    args = parser.parse_args()
    # `--problems a b key=value`: nargs="+" takes the overrides too; an override always has an `=`
    args.overrides += [p for p in args.problems if "=" in p]
    args.problems = [p for p in args.problems if "=" not in p] or parser.error("--problems names no problem")
    repo = args.repo.resolve()
    out = (args.out or repo / "runs" / "offline_engine" / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report = {"repo": str(repo), "commit": subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                                          capture_output=True, text=True, check=False).stdout.strip(),
              "iterations": args.iterations, "load_before": os.getloadavg(), "runs": []}
    seed_gaps = {p: seed_test_gap(repo, p, out) for p in args.problems if p == "warehouse_tsp"}
    for problem in args.problems:
        for seed in args.seeds:
            run_dir = out / f"{problem}-seed{seed}"
            started = time.perf_counter()
            _evolve(repo, "run", f"problem={problem}", f"budget.iterations={args.iterations}", f"seed={seed}",
                    f"hydra.run.dir={run_dir}", *args.overrides, timeout=7200)
            run = {"problem": problem, "seed": seed, "seconds": time.perf_counter() - started,
                   "load": os.getloadavg()[0], **read_run(run_dir)}
            tested = test_score(repo, problem, run_dir)
            if tested is not None:
                run["test"] = tested.get("score")
                gap, seed_gap = tested.get("metrics", {}).get("gap_to_optimum_pct"), seed_gaps.get(problem)
                if gap is not None and seed_gap:
                    run["test_headroom_share"] = 1 - gap / seed_gap
            report["runs"].append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "kinds"}), flush=True)
    report["load_after"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"results: {out / 'results.json'}")


def table(report: dict) -> str:
    """Markdown: one row per run, a median row per problem, and the per-kind counts summed over runs."""
    lines = [(f"commit {report['commit']}, {report['iterations']} iterations, load average "
              f"{report['load_before'][0]:.1f} before, {report['load_after'][0]:.1f} after"), "",
             "| problem | seed | best train | test | test headroom | duplicates | invalid | seconds |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for run in report["runs"]:
        by_problem[run["problem"]].append(run)
    for problem, runs in by_problem.items():
        lines += [f"| {problem} | {run['seed']} | {_f(run['best_train'])} | {_f(run.get('test'))} | "
                  f"{_pct(run.get('test_headroom_share'))} | {_pct(run['duplicate_share'])} | "
                  f"{_pct(run['invalid_share'])} | {run['seconds']:.0f} |" for run in runs + [_median(runs)]]
    lines += ["", "| problem | move | proposed | applied | duplicate | valid | improved |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for problem, runs in by_problem.items():
        total: dict[str, Counter] = defaultdict(Counter)
        for run in runs:
            for kind, counts in run["kinds"].items():
                total[kind].update(counts)
        for kind, c in sorted(total.items(), key=lambda kv: -kv[1]["proposed"]):
            lines.append(f"| {problem} | {kind} | {c['proposed']} | {c['applied']} | {c['duplicate']} | "
                         f"{c['valid']} | {c['improved']} |")
    return "\n".join(lines)


def _median(runs: list[dict]) -> dict:
    keys = ("best_train", "test", "test_headroom_share", "duplicate_share", "invalid_share", "seconds")
    row: dict = {"seed": "median"}
    for key in keys:
        values = [run[key] for run in runs if run.get(key) is not None]
        row[key] = statistics.median(values) if values else None
    return row


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.5g}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


if __name__ == "__main__":
    main()
