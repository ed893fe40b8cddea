"""Speed of the warehouse references and of scoring the seed, each against a baseline from the same run.

    .venv/bin/python benchmarks/warehouse_speed.py

Prints per-operation medians and ratios. Targets from the issue: exact DP under 1 ms per 60-pick tour;
the seed scored on all 60 training tours, sandbox included, under 0.5 s.
"""

from __future__ import annotations

import numpy as np
from timing import median_ms

from evaluators import evaluate_program
from evolve.problems import get_problem, load_evaluator, read_initial_program
from problems.warehouse_tsp import initial
from problems.warehouse_tsp.exact import ratliff_rosenthal
from problems.warehouse_tsp.instances import GeneratorConfig, generate
from problems.warehouse_tsp.routes import make_view
from sandboxes import ProcessSandbox


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` runs."""
    return median_ms(fn, repeats) / 1000


def main() -> None:
    cfg = GeneratorConfig(picks=(60, 60))
    tours = generate(cfg, 50, 1, "bench")
    for tour in tours:
        _ = tour.matrix  # distances are computed once per tour, outside the timings
    views = [make_view(t, np.random.default_rng(0), 1e9).instance for t in tours]
    dp = median_seconds(lambda: [ratliff_rosenthal(t.layout, t.start[0], t.aisles, t.ys) for t in tours], 5)
    dp /= len(tours)
    seed = median_seconds(lambda: [initial.solve(v) for v in views], 5) / len(tours)

    problem = get_problem("warehouse_tsp")
    evaluator = load_evaluator(problem)
    code = read_initial_program(problem)
    train_views = [make_view(t, np.random.default_rng(0), 1e9).instance for t in evaluator.splits["train"]]
    in_process = median_seconds(lambda: [initial.solve(v) for v in train_views], 5)
    sandbox = ProcessSandbox()
    evaluate_program(evaluator, sandbox, code, problem.limits)  # warm the reference cache
    sandboxed = median_seconds(lambda: evaluate_program(evaluator, sandbox, code, problem.limits), 7)

    print("| what | median | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| exact DP, one 60-pick tour | {dp * 1e3:.3f} ms | {dp / seed:.2f}x the greedy seed on the same tour |")
    print(f"| greedy seed in-process, one 60-pick tour (baseline) | {seed * 1e3:.3f} ms | 1.00x |")
    print(f"| seed on the 60 training tours in-process (baseline) | {in_process:.3f} s | 1.00x |")
    print(f"| seed scored on the 60 training tours, sandbox, smoke stage and checks included | {sandboxed:.3f} s | "
          f"{sandboxed / in_process:.1f}x the in-process run |")


if __name__ == "__main__":
    main()
