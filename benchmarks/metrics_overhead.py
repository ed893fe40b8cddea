"""What the campaign's Ray metrics cost per evaluation, against campaigns without them, in one run.

    .venv/bin/python benchmarks/metrics_overhead.py [PAIRS]

One local Ray instance (no dashboard; the metrics agent runs without it). PAIRS pairs of circle_packing
campaigns with the offline mutator, `ray.metrics=true` and `false` in alternating order. Two figures:

- direct: the controller's time inside `CampaignMetrics` (every record, counters, gauges and histograms,
  Ray's own calls included), per evaluation and as a share of the campaign's wall time per evaluation,
  as wall time (which includes waiting for the GIL while other threads run) and as the thread's CPU time;
- end to end: wall seconds per evaluation with and without metrics (medians of the pairs); on a shared
  2-core machine this difference is noise-bound, which is why the direct figure is the one to quote;
- isolated: one evaluation's records (a program, its evaluation, the gauges) in a tight loop, no campaign.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.observe.dashboard import loopback_pinned
from evolve.observe.metrics import CampaignMetrics
from evolve.problems import get_problem

ITERATIONS = 60


class _Timed:
    """Adds up the wall time spent in `CampaignMetrics._put`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0  # the controller thread's CPU time: the wall time less waits for the GIL and the CPU
        self.calls = 0
        self._put = CampaignMetrics._put
        timed = self

        def put(metrics, *args, **kwargs):
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return timed._put(metrics, *args, **kwargs)
            finally:
                timed.seconds += time.perf_counter() - started
                timed.cpu += time.thread_time() - cpu
                timed.calls += 1

        CampaignMetrics._put = put  # type: ignore[method-assign]


def campaign(metrics: bool, seed: int, tmp: Path) -> tuple[float, int]:
    """Wall seconds and evaluations of one campaign."""
    config = Config(problem=get_problem("circle_packing"), seed=seed, progress="off", llm=LLMConfig(kind="offline"),
                    database=DatabaseConfig(islands=2), ray=RayConfig(num_workers=2, metrics=metrics),
                    budget=BudgetConfig(iterations=ITERATIONS))
    result = Campaign(config, tmp / f"{'on' if metrics else 'off'}-{seed}").run()
    return result.seconds, result.evaluated


def _isolated(n: int = 2000) -> float:
    """Seconds for one evaluation's records, alone."""
    from evaluators.cascade import EvaluationResult
    from evolve.observe.progress import Stats
    from evolve.program import Program, ProgramStatus

    metrics = CampaignMetrics("isolated", "circle_packing")
    program = Program(id=1, iteration=3, status=ProgramStatus.VALID, code="", code_hash="", proposer="offline",
                      prompt_tokens=10, completion_tokens=5, cost=0.001)
    result = EvaluationResult(valid=True, score=1.0, stage_seconds={"load": 0.01, "evaluate": 0.05})
    stats = Stats(started=time.monotonic(), evaluated=5, valid=3)
    started = time.perf_counter()
    for _ in range(n):
        metrics.record(program)
        metrics.evaluation(result)
        metrics.update(stats)
    return (time.perf_counter() - started) / n


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with loopback_pinned("local"):
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.ERROR, log_to_driver=False)
    isolated = _isolated()  # before `_Timed` wraps the records
    timed = _Timed()
    per_eval = {True: [], False: []}
    direct = []
    with tempfile.TemporaryDirectory() as tmp:
        campaign(True, 999, Path(tmp))  # warm-up: worker processes, imports, the metrics' first export
        for pair in range(pairs):
            for metrics in ((True, False) if pair % 2 == 0 else (False, True)):
                before, cpu, calls = timed.seconds, timed.cpu, timed.calls
                seconds, evaluated = campaign(metrics, pair, Path(tmp))
                per_eval[metrics].append(seconds / evaluated)
                if metrics:
                    direct.append(((timed.seconds - before) / evaluated, (timed.calls - calls) / evaluated,
                                   seconds / evaluated, (timed.cpu - cpu) / evaluated))
    ray.shutdown()
    cost = statistics.median(d[0] for d in direct)
    calls = statistics.median(d[1] for d in direct)
    wall = statistics.median(d[2] for d in direct)
    cpu = statistics.median(d[3] for d in direct)
    on, off = statistics.median(per_eval[True]), statistics.median(per_eval[False])
    print(f"{pairs} pairs of {ITERATIONS}-iteration circle_packing campaigns, offline mutator, 2 workers")
    print(f"direct: {cost * 1e6:.0f} us in metrics per evaluation ({calls:.1f} records), "
          f"{100 * cost / wall:.3f}% of the {wall * 1e3:.1f} ms wall time per evaluation; CPU time "
          f"{cpu * 1e6:.0f} us ({100 * cpu / wall:.3f}%)")
    print(f"end to end: {on * 1e3:.1f} ms per evaluation with metrics, {off * 1e3:.1f} ms without "
          f"({100 * (on - off) / off:+.1f}%; "
          f"spread with: {min(per_eval[True]) * 1e3:.1f}-{max(per_eval[True]) * 1e3:.1f} ms, "
          f"without: {min(per_eval[False]) * 1e3:.1f}-{max(per_eval[False]) * 1e3:.1f} ms)")
    print(f"isolated: {isolated * 1e6:.0f} us for one evaluation's records")


if __name__ == "__main__":
    main()
