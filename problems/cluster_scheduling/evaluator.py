"""Trusted scoring for cluster scheduling: the scheduler runs here and asks the candidate to rank machines."""

from __future__ import annotations

import weakref

import numpy as np

from evaluators import CallBudget, CandidateError, RejectedReply, Score, Session, SplitEvaluator, lockstep
from problems.cluster_scheduling.heuristics import alphaevolve
from problems.cluster_scheduling.report import reference_rows
from problems.cluster_scheduling.scoring import best_fit_outcome, summarise
from problems.cluster_scheduling.simulator import Outcome, simulate, simulation_steps
from problems.cluster_scheduling.traces import SPLITS, GeneratorConfig, Trace, build_splits

__all__ = ["ClusterScheduling"]


class ClusterScheduling(SplitEvaluator):
    """Scores `score(task, machines) -> list[float]` by the fleet capacity it wastes, stranded or pending.

    The scheduler (`simulator.simulation_steps`) runs on this side and asks the candidate to score the
    machines that can hold each task. The traces of a split are simulated side by side
    (`evaluators.lockstep`): one sandbox round trip carries the current placement of every trace still
    running, so a call never holds a later task of its own trace. A reply that is not a list of
    len(machines) finite numbers, a raising call, one running past `call_timeout`, or calls using more
    than `max_ms_per_task` of CPU time on average (2 s at least per split; measured outside the sandbox)
    make the program invalid. Fitness is minus the mean over the traces of stranded % + `pending_weight`
    x pending %. A quick stage (the first training trace) comes first: a child more than `quick_margin`
    points worse than best fit there is not simulated on the rest (None: no quick stage). Validation and
    test traces are scored only through `validate` and `test`.
    """

    entrypoint = "score"
    reference_splits = SPLITS
    timing_metrics = ("ms_per_task",)

    def __init__(self, exhausted_quantile: float = 0.1, pending_weight: float = 1.0, smoke_tasks: int = 300,
                 call_timeout: float = 20.0, max_ms_per_task: float = 5.0, quick_margin: float | None = 1.0,
                 lanes: int = 1, **generator: object) -> None:
        self.generator = GeneratorConfig(**generator)
        self.splits = build_splits(self.generator)
        self.exhausted_quantile = float(exhausted_quantile)
        self.pending_weight = float(pending_weight)
        self.call_timeout = float(call_timeout)
        self.max_ms_per_task = float(max_ms_per_task)
        if int(lanes) < 1:
            raise ValueError(f"lanes={lanes}: at least one batch must be in flight (1, or 2 to overlap the candidate's "
                             "computing with this side's)")
        self.lanes = int(lanes)
        self.smoke_set = [self.splits["train"][0].head(min(smoke_tasks, self.generator.tasks))]
        quick = self.splits["train"][:1]
        self.quick_margin = None if quick_margin is None else float(quick_margin)
        self.quick_set = quick if self.quick_margin is not None and len(self.splits["train"]) > 1 else None
        self.quick_bar = (summarise([best_fit_outcome(t, self.exhausted_quantile) for t in quick],
                                    self.pending_weight)["wasted_pct"] + self.quick_margin if self.quick_set else None)
        self._quick_done: weakref.WeakKeyDictionary[Session, tuple[dict[str, Outcome], float]] = \
            weakref.WeakKeyDictionary()

    def references(self, split: str) -> list[dict]:
        """First fit, best fit, worst fit, the dot product and AlphaEvolve's published score on one split."""
        return reference_rows(self.splits[split], self.exhausted_quantile, self.pending_weight)

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """AlphaEvolve's published Borg score (`heuristics.alphaevolve`) as the fitness on `split`."""
        outcomes = [simulate(trace, alphaevolve, self.exhausted_quantile) for trace in self.splits[split]]
        return {"AlphaEvolve's Borg score": -summarise(outcomes, self.pending_weight)["wasted_pct"]}

    def could_matter(self, quick: Score) -> bool:
        """Whether the quick trace's waste is within `quick_margin` points of best fit's there."""
        return quick.valid and -quick.value <= self.quick_bar

    def _simulate(self, candidate: Session, traces: list[Trace], split: str, budget: CallBudget) -> list[Outcome]:
        """Simulate `traces` side by side; the quick stage's outcomes are kept for the train stage that follows
        it in the same session (the same traces, the same candidate: simulated once)."""
        done: dict[str, Outcome] = {}
        earlier = self._quick_done.pop(candidate, None)
        if split == "train" and earlier is not None and set(earlier[0]) <= {t.name for t in traces}:
            done, budget.spent = earlier
        todo = [t for t in traces if t.name not in done]

        def send(arg_lists: list[tuple]) -> object:
            return budget.send_numbers("score", arg_lists, counts=[len(machines) for _, machines in arg_lists],
                                       what="scores", timeout=self.call_timeout, pick=True)

        try:
            episodes = [simulation_steps(t, self.exhausted_quantile) for t in todo]
            outcomes = lockstep(episodes, send, budget.receive_numbers, self.lanes)
        except (RejectedReply, CandidateError) as exc:
            episode = getattr(exc, "episode", None)
            if episode is None:
                raise
            trace = todo[episode]
            raise type(exc)(f"{split} trace {trace.name} ({trace.tasks} tasks, {len(trace.capacity)} machines): "
                            f"{exc}") from None
        done.update((t.name, o) for t, o in zip(todo, outcomes))
        if split == "quick":
            self._quick_done[candidate] = (dict(done), budget.spent)
        return [done[t.name] for t in traces]

    def score(self, candidate: Session, traces: list[Trace], split: str) -> Score:
        """Simulate every trace with the candidate's scores and compare with best fit."""
        tasks = sum(t.tasks for t in traces)
        budget = CallBudget(candidate, max(2.0, self.max_ms_per_task * tasks / 1000))
        try:
            outcomes = self._simulate(candidate, traces, split, budget)
        except RejectedReply as exc:
            where = "" if getattr(exc, "episode", None) is not None else \
                f"{split} ({len(traces)} traces, {tasks} tasks): "
            return Score.invalid(f"{where}{exc}")
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
