"""Trusted scoring for cluster scheduling: the scheduler runs here and asks the candidate to rank machines."""

from __future__ import annotations


import numpy as np

from evaluators import CallBudget, RejectedReply, Score, Session, SplitEvaluator
from problems.cluster_scheduling.heuristics import alphaevolve
from problems.cluster_scheduling.report import reference_rows
from problems.cluster_scheduling.scoring import best_fit_outcome, summarise
from problems.cluster_scheduling.simulator import simulate
from problems.cluster_scheduling.traces import SPLITS, GeneratorConfig, Trace, build_splits

__all__ = ["ClusterScheduling"]


class ClusterScheduling(SplitEvaluator):
    """Scores `score(task, machines) -> list[float]` by the fleet capacity it wastes, stranded or pending.

    The scheduler (`simulator.simulate`) runs on this side and makes one sandbox call per placement,
    with the machines that can hold the task. A reply that is not a list of len(machines) finite
    numbers, a raising or hanging call, or calls using more than `max_ms_per_task` of CPU time on
    average (2 s at least per split; measured outside the sandbox) make the program invalid. Fitness is minus
    the mean over the traces of stranded % + `pending_weight` x pending %; validation and test traces are
    scored only through `validate` and `test`.
    """

    entrypoint = "score"
    reference_splits = SPLITS
    timing_metrics = ("ms_per_task",)

    def __init__(self, exhausted_quantile: float = 0.1, pending_weight: float = 1.0, smoke_tasks: int = 300,
                 call_timeout: float = 20.0, max_ms_per_task: float = 5.0, **generator: object) -> None:
        self.generator = GeneratorConfig(**generator)
        self.splits = build_splits(self.generator)
        self.exhausted_quantile = float(exhausted_quantile)
        self.pending_weight = float(pending_weight)
        self.call_timeout = float(call_timeout)
        self.max_ms_per_task = float(max_ms_per_task)
        self.smoke_set = [self.splits["train"][0].head(min(smoke_tasks, self.generator.tasks))]

    def references(self, split: str) -> list[dict]:
        """First fit, best fit, worst fit, the dot product and AlphaEvolve's published score on one split."""
        return reference_rows(self.splits[split], self.exhausted_quantile, self.pending_weight)

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """AlphaEvolve's published Borg score (`heuristics.alphaevolve`) as the fitness on `split`."""
        outcomes = [simulate(trace, alphaevolve, self.exhausted_quantile) for trace in self.splits[split]]
        return {"AlphaEvolve's Borg score": -summarise(outcomes, self.pending_weight)["wasted_pct"]}

    def score(self, candidate: Session, traces: list[Trace], split: str) -> Score:
        """Simulate every trace with the candidate's scores and compare with best fit."""
        tasks = sum(t.tasks for t in traces)
        budget = CallBudget(candidate, max(2.0, self.max_ms_per_task * tasks / 1000))

        def scorer(task: dict, machines: list[list[float]]) -> list[float]:
            return budget.numbers("score", task, machines, count=len(machines), what="scores",
                                  timeout=self.call_timeout)

        outcomes = []
        for trace in traces:
            try:
                outcomes.append(simulate(trace, scorer, self.exhausted_quantile))
            except RejectedReply as exc:
                return Score.invalid(f"{split} trace {trace.name} ({trace.tasks} tasks, {len(trace.capacity)} "
                                     f"machines): {exc}")
        seconds = budget.spent
        got = summarise(outcomes, self.pending_weight)
        base = summarise([best_fit_outcome(t, self.exhausted_quantile) for t in traces], self.pending_weight)
        per_trace = [o.wasted_pct(self.pending_weight) for o in outcomes]
        worst = int(np.argmax(per_trace))
        metrics = {**got, "best_fit_wasted_pct": base["wasted_pct"],
                   "gain_over_best_fit": base["wasted_pct"] - got["wasted_pct"],
                   "ms_per_task": 1000 * seconds / tasks, "traces": len(traces)}
        feedback = (f"{split}: {got['wasted_pct']:.3f}% of the fleet wasted, mean of {len(traces)} traces: "
                    f"{got['stranded_pct']:.3f}% stranded (CPU {got['stranded_cpu_pct']:.2f}%, memory "
                    f"{got['stranded_mem_pct']:.2f}%) + {got['pending_pct']:.3f}% requested by waiting tasks "
                    f"({got['waited_per_trace']:.1f} tasks waited per trace, {got['unplaced']} never placed); "
                    f"best fit {base['wasted_pct']:.3f}% ({metrics['gain_over_best_fit']:+.3f} points better); "
                    f"{got['allocated_pct']:.1f}% allocated, {got['empty_machines_pct']:.1f}% of machines empty; "
                    f"worst {traces[worst].name} {per_trace[worst]:.2f}%; {metrics['ms_per_task']:.3f} ms per task")
        return Score(value=-got["wasted_pct"], metrics=metrics, feedback=feedback,
                     features={"empty_machines_pct": got["empty_machines_pct"]})
