"""Per-run figures of a model campaign, from its run dir: proposals, applied, valid, improved, best vs initial,
tokens and seconds per proposal, and the commonest edit failures (issue 23's real-model benchmark). An
OpenEvolve 0.4.0 output folder (`--openevolve`) is read from its log, as far as the log says the same.

    .venv/bin/python benchmarks/model_run_summary.py RUN_DIR [RUN_DIR ...] [--openevolve OUTPUT] [--json OUT]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from evolve.observe.outcomes import model_outcomes
from evolve.program import ProgramStatus
from evolve.storage.rundir import load_config, open_database

__all__ = ["summarise", "summarise_openevolve"]

_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ - \S+ - \w+ - "
_CHILD = re.compile(_STAMP + r"Iteration (\d+): Program (\S+) \(parent: (\S+)\) completed in ([\d.]+)s")
_ERROR = re.compile(_STAMP + r"Iteration (\d+) error: (.*?)(?: \| tokens: |$)")
_TOKENS = re.compile(r"\| tokens: \d+ \(prompt: (\d+), completion: (\d+)\)")
_METRICS = re.compile(_STAMP + r"Metrics: .*?combined_score=(-?[\d.e+]+)")
_INITIAL = re.compile(_STAMP + r"Evaluated program (\S+) in [\d.]+s: combined_score=(-?[\d.e+]+)")


def _score(program: Any) -> float:
    return program.score if program.score is not None else float("-inf")


def summarise(run_dir: Path) -> dict[str, Any]:
    """The figures of one run dir."""
    with open_database(load_config(run_dir), run_dir, read_only=True) as db:
        programs = list(db.programs())
    by_id = {p.id: p for p in programs}
    initial = min((p for p in programs if p.iteration == 0), key=lambda p: p.id)
    children = [p for p in programs if p.iteration > 0]
    valid = [p for p in children if p.status == ProgramStatus.VALID and p.score is not None]
    improved = [p for p in valid if p.parent_id in by_id and _score(p) > _score(by_id[p.parent_id])]
    applied = sum(o.applied for o in model_outcomes(children).values())
    reasons = "; ".join(o.reasons() for o in model_outcomes(children).values())
    n = len(children)
    seconds = [p.propose_seconds for p in children if p.propose_seconds is not None]
    best = max([initial, *valid], key=_score)
    return {
        "run_dir": str(run_dir), "proposals": n, "applied": applied, "valid": len(valid),
        "improved_parent": len(improved), "better_than_initial": sum(_score(p) > _score(initial) for p in valid),
        "initial": initial.score, "best": best.score, "best_iteration": best.iteration,
        "prompt_tokens_per_proposal": sum(p.prompt_tokens for p in children) / n if n else None,
        "completion_tokens_per_proposal": sum(p.completion_tokens for p in children) / n if n else None,
        "propose_seconds_median": statistics.median(seconds) if seconds else None,
        "propose_seconds_mean": statistics.fmean(seconds) if seconds else None,
        "statuses": {s.value: sum(p.status == s for p in children) for s in ProgramStatus
                     if any(p.status == s for p in children)},
        "edit_failures": reasons,
    }


def summarise_openevolve(output: Path) -> dict[str, Any]:
    """The figures of one OpenEvolve output folder, read from its log (`logs/openevolve_*.log`)."""
    lines = "".join(f.read_text(errors="replace") for f in sorted((output / "logs").glob("openevolve_*.log")))
    scores: dict[str, float] = {}
    children: list[tuple[str, str]] = []
    errors: collections.Counter[str] = collections.Counter()
    tokens: list[tuple[int, int]] = []
    stamps: list[datetime.datetime] = []
    last_child = ""
    for line in lines.splitlines():
        if (m := _INITIAL.match(line)) and not scores:
            scores[m[2]] = float(m[3])
            initial_id = m[2]
        elif m := _CHILD.match(line):
            children.append((m[3], m[4]))
            last_child = m[3]
        elif m := _ERROR.match(line):
            errors[m[3][:80]] += 1
        elif (m := _METRICS.match(line)) and last_child:
            scores[last_child] = float(m[2])
            last_child = ""
        else:
            continue
        stamps.append(datetime.datetime.fromisoformat(m[1]))
        if t := _TOKENS.search(line):
            tokens.append((int(t[1]), int(t[2])))
    if not scores:
        return {"run_dir": str(output), "proposals": 0}
    n = len(children) + sum(errors.values())
    valid = [c for c, _ in children if scores.get(c, -1e9) > -1e8]
    initial = scores[initial_id]
    return {
        "run_dir": str(output), "proposals": n, "applied": len(children), "valid": len(valid),
        "improved_parent": sum(scores[c] > scores.get(p, float("inf")) for c, p in children if c in valid),
        "better_than_initial": sum(scores[c] > initial for c in valid), "initial": initial,
        "best": max([initial, *(scores[c] for c in valid)]), "best_iteration": None,
        "prompt_tokens_per_proposal": sum(t[0] for t in tokens) / n if n else None,
        "completion_tokens_per_proposal": sum(t[1] for t in tokens) / n if n else None,
        "propose_seconds_median": None,
        "propose_seconds_mean": (stamps[-1] - stamps[0]).total_seconds() / n if n else None,  # wall, evaluation in
        "statuses": {"applied": len(children), "valid": len(valid), "not applied": sum(errors.values())},
        "edit_failures": ", ".join(f"{k} {v}" for k, v in errors.most_common(3)),
    }


def main(argv: list[str] | None = None) -> int:
    """Print each run dir's figures as a markdown row; write them as JSON with --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="*", type=Path)
    parser.add_argument("--openevolve", type=Path, action="append", default=[], help="an OpenEvolve output folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [summarise(d) for d in args.run_dirs] + [summarise_openevolve(d) for d in args.openevolve]
    print("| run | proposals | applied | valid | improved parent | > initial | initial | best | prompt tok | "
          "completion tok | s/proposal (median, mean) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["proposals"] or 1
        print(f"| {r['run_dir']} | {r['proposals']} | {r['applied']} ({r['applied'] / n:.0%}) | "
              f"{r['valid']} ({r['valid'] / n:.0%}) | {r['improved_parent']} | {r['better_than_initial']} | "
              f"{r['initial']:.5g} | {r['best']:.5g} | {r['prompt_tokens_per_proposal'] or 0:.0f} | "
              f"{r['completion_tokens_per_proposal'] or 0:.0f} | {r['propose_seconds_median'] or 0:.1f}, "
              f"{r['propose_seconds_mean'] or 0:.1f} |")
    for r in rows:
        print(f"{r['run_dir']}: {r['statuses']}; edit failures: {r['edit_failures']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
