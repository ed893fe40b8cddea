"""Do verdicts survive a busy machine? The warehouse seed scored again and again beside busy loops.

    .venv/bin/python benchmarks/loaded_verdicts.py [--hogs-per-core 8] [--evaluations 30]

Starts `hogs-per-core` busy-loop processes per core (load about 16 on two cores with the default), then
scores the warehouse_tsp seed `evaluations` times with its time budget charged two ways in the same
run: in CPU time measured outside the sandbox (what the evaluator does) and, as the baseline, in wall
time (what it did before). Then a candidate that burns ten times the budget in CPU, which must stay
invalid. The hogs are killed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics

from evaluators import evaluate_program
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import get_problem, load_evaluator, read_initial_program
from sandboxes import Session

SLOW = ("    import time\n    spent = time.thread_time()\n    while time.thread_time() - spent < 0.5:\n"
        "        pass\n    return route\n")


def _hog() -> None:
    os.nice(0)
    while True:
        pass


class WallClock(Session):
    """A session whose CPU time cannot be read: the evaluator falls back to wall time (the baseline)."""

    def __init__(self, inner: Session) -> None:
        self._inner = inner

    def call(self, function, *args, timeout=None):
        return self._inner.call(function, *args, timeout=timeout)

    @property
    def output(self) -> str:
        return self._inner.output


class WallSandbox:
    """The real sandbox, its sessions wrapped in `WallClock`."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def session(self, source, limits):
        import contextlib

        @contextlib.contextmanager
        def wrapped():
            with self._inner.session(source, limits) as s:
                yield WallClock(s)

        return wrapped()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs-per-core", type=int, default=8)
    parser.add_argument("--evaluations", type=int, default=30)
    args = parser.parse_args()
    problem = get_problem("warehouse_tsp")
    evaluator = load_evaluator(problem)
    seed = read_initial_program(problem)
    slow = seed.replace("    return route\n", SLOW)
    sandbox = make_sandbox()
    quiet = evaluate_program(evaluator, sandbox, seed, problem.limits)
    hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(args.hogs_per_core * os.cpu_count())]
    for hog in hogs:
        hog.start()
    try:
        rows = {}
        for name, box in (("CPU time, measured outside", sandbox), ("wall time (baseline)", WallSandbox(sandbox))):
            results = [evaluate_program(evaluator, box, seed, problem.limits) for _ in range(args.evaluations)]
            valid = [r for r in results if r.valid]
            rows[name] = (len(valid), {r.score for r in valid},
                          statistics.median(r.metrics["ms_per_tour"] for r in valid) if valid else float("nan"),
                          next((r.feedback for r in results if not r.valid), ""))
        slow_result = evaluate_program(evaluator, sandbox, slow, problem.limits)
        load = os.getloadavg()[0]
    finally:
        for hog in hogs:
            hog.kill()
    print(f"machine: {os.cpu_count()} cores, {len(hogs)} busy loops, load average {load:.1f}")
    print(f"quiet machine: the seed scores {quiet.score:.6g} ({quiet.metrics['ms_per_tour']:.2f} ms per tour)")
    print("| budget charged in | valid | scores seen | median ms per tour | first failure |")
    print("| --- | ---: | --- | ---: | --- |")
    for name, (n, scores, ms, failure) in rows.items():
        shown = ", ".join(f"{s:.6g}" for s in sorted(scores)) or "-"
        print(f"| {name} | {n} of {args.evaluations} | {shown} | {ms:.2f} | {failure[:90] or '-'} |")
    verdict = "invalid" if not slow_result.valid else "VALID (wrong)"
    print(f"a candidate burning 10x the budget in CPU: {verdict}: {slow_result.feedback[:120]}")
    sandbox.close()


if __name__ == "__main__":
    main()
