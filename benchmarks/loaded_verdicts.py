"""Do verdicts survive a busy machine? Programs scored again and again, idle and beside busy loops.

    .venv/bin/python benchmarks/loaded_verdicts.py [--hogs-per-core 8] [--evaluations 30]
        [--cases seed,import,circle] [--repeats 10] [--parallel 1]

Starts `hogs-per-core` busy-loop processes per core (load about 16 on two cores with the default), then
scores the warehouse_tsp seed `evaluations` times with its time budget charged two ways in the same
run: in CPU time measured outside the sandbox (what the evaluator does) and, as the baseline, in wall
time (what it did before). Then a candidate that burns ten times the budget in CPU, which must stay
invalid (case `seed`). Case `import`: the warehouse seed spending 1 s of CPU at import, and case
`circle`: a circle_packing program using 4 s of CPU in `solve`, each scored `repeats` times before the
hogs start and `repeats` times beside them (`parallel` at once): each must get one verdict every time.
The hogs are killed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import statistics
from concurrent.futures import ThreadPoolExecutor

from evaluators import evaluate_program
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import get_problem, load_evaluator, read_initial_program
from sandboxes import Session

SLOW = ("    import time\n    spent = time.thread_time()\n    while time.thread_time() - spent < 0.5:\n"
        "        pass\n    return route\n")
AT_IMPORT = ("import time as _time\n_spent = _time.process_time()\nwhile _time.process_time() - _spent < 1.0:\n"
             "    pass\n")
BURN_4S = ('def solve(n=26):\n    """Return the packing as a list of [x, y, r]."""\n    import time\n'
           "    spent = time.process_time()\n    while time.process_time() - spent < 4.0:\n        pass\n")


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


def _verdicts(results) -> str:
    """How many results got each verdict (valid, or the first words of the reason)."""
    counts = collections.Counter("valid" if r.valid else f"invalid ({_why(r.feedback)})" for r in results)
    return "; ".join(f"{n} x {verdict}" for verdict, n in counts.most_common())


def _why(feedback: str) -> str:
    """The reason's gist without its measured figures (which differ from run to run)."""
    for gist in ("over the time budget", "over the budget", "of CPU", "timed out", "killed"):
        if gist in feedback:
            return gist
    return feedback[-60:]


def _cases(names: list[str]) -> dict[str, tuple]:
    """The extra cases: name -> (problem, evaluator, program)."""
    made = {}
    if "import" in names:
        problem = get_problem("warehouse_tsp")
        made["warehouse seed spending 1 s of CPU at import"] = (problem, load_evaluator(problem),
                                                               AT_IMPORT + read_initial_program(problem))
    if "circle" in names:
        problem = get_problem("circle_packing")
        seed = read_initial_program(problem)
        head = 'def solve(n=26):\n    """Return the packing as a list of [x, y, r]."""\n'
        made["circle_packing program using 4 s of CPU"] = (problem, load_evaluator(problem),
                                                          seed.replace(head, BURN_4S))
    return made


def _score(cases: dict[str, tuple], sandbox, repeats: int, parallel: int) -> dict[str, list]:
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return {name: list(pool.map(lambda _, c=case: evaluate_program(c[1], sandbox, c[2], c[0].limits),
                                    range(repeats))) for name, case in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs-per-core", type=int, default=8)
    parser.add_argument("--evaluations", type=int, default=30)
    parser.add_argument("--cases", default="seed,import,circle")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args()
    names = args.cases.split(",")
    cases = _cases(names)
    sandbox = make_sandbox()
    idle = _score(cases, sandbox, args.repeats, args.parallel)
    problem = get_problem("warehouse_tsp")
    evaluator = load_evaluator(problem)
    seed = read_initial_program(problem)
    slow = seed.replace("    return route\n", SLOW)
    quiet = evaluate_program(evaluator, sandbox, seed, problem.limits) if "seed" in names else None
    hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(args.hogs_per_core * os.cpu_count())]
    for hog in hogs:
        hog.start()
    try:
        loaded = _score(cases, sandbox, args.repeats, args.parallel)
        rows = {}
        boxes = (("CPU time, measured outside", sandbox), ("wall time (baseline)", WallSandbox(sandbox)))
        for name, box in boxes if quiet is not None else ():
            results = [evaluate_program(evaluator, box, seed, problem.limits) for _ in range(args.evaluations)]
            valid = [r for r in results if r.valid]
            rows[name] = (len(valid), {r.score for r in valid},
                          statistics.median(r.metrics["ms_per_tour"] for r in valid) if valid else float("nan"),
                          next((r.feedback for r in results if not r.valid), ""))
        slow_result = evaluate_program(evaluator, sandbox, slow, problem.limits) if quiet is not None else None
        load = os.getloadavg()[0]
    finally:
        for hog in hogs:
            hog.kill()
    print(f"machine: {os.cpu_count()} cores, {len(hogs)} busy loops, load average {load:.1f}")
    if cases:
        print(f"| program | without our busy loops ({args.repeats}) | beside them ({args.repeats}, "
              f"{args.parallel} at once) |")
        print("| --- | --- | --- |")
        for name in cases:
            print(f"| {name} | {_verdicts(idle[name])} | {_verdicts(loaded[name])} |")
        for name in cases:
            print(f"{name}, first reason: {(idle[name] + loaded[name])[0].feedback[:160]}")
    if quiet is None:
        sandbox.close()
        return
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
