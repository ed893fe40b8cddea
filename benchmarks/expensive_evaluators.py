"""What an evaluation of an expensive problem costs against the candidate's own CPU time.

For bin_packing and cluster_scheduling, scores the initial program on the default training split in one
process-sandbox session (`evaluator.score(session, train, "train")`) and reports the evaluation's wall time,
the candidate's own CPU time (its session's, read outside the sandbox: what the budget charges) and their
ratio; the trusted side's own CPU time (this process's) and `cpu ratio`, (trusted + candidate CPU) /
candidate CPU: what the wall ratio would be on an idle core with free round trips, a figure a loaded
machine disturbs less than wall time; then the whole cascade (`evaluate_program`: smoke, quick where there
is one, train). Median of `--repeats` runs, with the machine's load average, as a table and as JSON.
`--param key=value` passes a problem param (e.g. `lanes=2`; a checkout without it refuses it).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/expensive_evaluators.py [--repeats 3] [--json OUT] [--param k=v]

The evaluator API it uses is the same before and after the batched calls: run it against another checkout
with that checkout's PYTHONPATH (the script's own directory is not imported), e.g. from `main`:

    cd /work/main && PYTHONPATH=$PWD .venv/bin/python /path/to/benchmarks/expensive_evaluators.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

PROBLEMS = ("bin_packing", "cluster_scheduling")


def measure(name: str, repeats: int, params: dict) -> dict:
    """Median wall and candidate CPU of a train-split evaluation, and the cascade's wall, for one problem."""
    from evaluators import evaluate_program
    from evolve.evaluation.sandboxing import make_sandbox
    from evolve.problems import get_problem, load_evaluator, read_initial_program

    problem = get_problem(name)
    evaluator, code = load_evaluator(problem, **params), read_initial_program(problem)
    sandbox = make_sandbox(None, problem)
    sandbox.warm()
    walls, cpus, trusted, cascades, scores = [], [], [], [], set()
    try:
        for _ in range(repeats):
            with sandbox.session(code, problem.limits) as session:
                cpu, began, own = session.cpu_seconds(), time.perf_counter(), time.thread_time()
                score = evaluator.score(session, evaluator.splits["train"], "train")
                walls.append(time.perf_counter() - began)
                trusted.append(time.thread_time() - own)
                cpus.append(session.cpu_seconds() - cpu)
            scores.add(score.value)
            result = evaluate_program(evaluator, sandbox, code, problem.limits)
            cascades.append(result.seconds)
    finally:
        sandbox.close()
    wall, cpu, own = statistics.median(walls), statistics.median(cpus), statistics.median(trusted)
    return {"problem": name, "train_wall_s": wall, "candidate_cpu_s": cpu, "ratio": wall / cpu,
            "trusted_cpu_s": own, "cpu_ratio": (own + cpu) / cpu, "params": params,
            "cascade_wall_s": statistics.median(cascades), "score": sorted(scores), "repeats": repeats,
            "stages": sorted(result.stage_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--param", action="append", default=[], help="a problem param, key=value (YAML value)")
    parser.add_argument("problems", nargs="*", default=list(PROBLEMS))
    args = parser.parse_args()
    import yaml

    params = {k: yaml.safe_load(v) for k, _, v in (p.partition("=") for p in args.param)}
    load = os.getloadavg()
    rows = [measure(name, args.repeats, params) for name in args.problems]
    import evolve

    print(f"checkout {os.path.dirname(os.path.dirname(evolve.__file__))}; load average {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after, {os.cpu_count()} CPUs")
    print(f"{'problem':20} {'train wall s':>12} {'candidate CPU s':>15} {'ratio':>6} {'trusted CPU s':>13} "
          f"{'cpu ratio':>9} {'cascade wall s':>14}  stages")
    for r in rows:
        print(f"{r['problem']:20} {r['train_wall_s']:12.3f} {r['candidate_cpu_s']:15.3f} {r['ratio']:6.2f} "
              f"{r['trusted_cpu_s']:13.3f} {r['cpu_ratio']:9.2f} {r['cascade_wall_s']:14.3f}  {', '.join(r['stages'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_average": load, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
