"""Per-run figures of a model campaign, from its run dir: proposals, applied, valid, improved, best vs initial,
tokens and seconds per proposal, and the commonest edit failures (issue 23's real-model benchmark).

    .venv/bin/python benchmarks/model_run_summary.py RUN_DIR [RUN_DIR ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from evolve.observe.outcomes import model_outcomes
from evolve.program import ProgramStatus
from evolve.storage.rundir import load_config, open_database

__all__ = ["summarise"]


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


def main(argv: list[str] | None = None) -> int:
    """Print each run dir's figures as a markdown row; write them as JSON with --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [summarise(d) for d in args.run_dirs]
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
