"""A campaign's Ray metrics: counters, gauges and histograms, tagged by campaign and problem.

Ray serves them in Prometheus text on each node's metrics export port, prefixed `ray_` (counters end in
`_total`); `scripts/prometheus.sh` scrapes them, `evolve/observe/grafana/evolve.json` charts them. Recording is
a few microseconds on the controller, and they go to Ray at most once a second, counters and gauges
summed or overwritten per series (Prometheus scrapes every few seconds; each call into Ray lets other
threads take the GIL); `benchmarks/metrics_overhead.py` measures the cost. Until Ray is up (it starts in
the background while the first programs are scored here), records wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evaluators.cascade import EvaluationResult
from evolve.evaluation.pool import Pool, ray_connected
from evolve.program import Program, ProgramStatus

_log = logging.getLogger("evolve.engine.campaign")

if TYPE_CHECKING:
    from evolve.observe.progress import Stats

__all__ = ["SERIES", "CampaignMetrics", "MeteredPool"]

FLUSH_SECONDS = 1.0  # records go to Ray at most this often (and at the stop)
_LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

# name in Ray -> (kind, description, tag keys besides campaign and problem)
_METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "evolve_programs": ("counter", ("Programs committed, by status (valid, invalid, edit_failed, duplicate, "
                                    "similar, proposal_failed, evaluator_error)"), ("status",)),
    "evolve_llm_calls": ("counter", "Proposer calls, by model and outcome (ok, failed)", ("model", "outcome")),
    "evolve_llm_tokens": ("counter", "Tokens of proposer calls, by model and kind (prompt, completion)",
                          ("model", "kind")),
    "evolve_llm_cost_usd": ("counter", "Dollars spent on proposer calls, by model", ("model",)),
    "evolve_sandbox_failures": ("counter", ("Evaluations that failed, by kind (timeout, crash, candidate_error, "
                                            "evaluator_error, rejected)"), ("kind",)),
    "evolve_evaluation_seconds": ("histogram", ("Wall time of an evaluation stage (load: sandbox start), by "
                                                "stage and outcome (valid, invalid)"), ("stage", "outcome")),
    "evolve_evals_per_second": ("gauge", "Evaluations per second since the first proposal", ()),
    "evolve_valid_share": ("gauge", "Valid programs among those evaluated (0 to 1)", ()),
    "evolve_in_flight": ("gauge", "Iterations in flight (proposals and evaluations)", ()),
    "evolve_best_score": ("gauge", "Best train score (as the evaluator gives it, minimised or not)", ()),
    "evolve_best_validation_score": ("gauge", "Validation score of the latest best that was validated", ()),
}

SERIES: dict[str, str] = {  # the Prometheus series this module exports -> their Ray metric
    **{f"ray_{name}_total": name for name, (kind, _, _) in _METRICS.items() if kind == "counter"},
    **{f"ray_{name}_{end}": name for name, (kind, _, _) in _METRICS.items() if kind == "histogram"
       for end in ("bucket", "sum", "count")},
    **{f"ray_{name}": name for name, (kind, _, _) in _METRICS.items() if kind == "gauge"},
}


# one Ray metric per name per process (making one costs milliseconds); tags tell campaigns apart
_MADE: dict[str, Any] = {}


def _metric(name: str) -> Any:
    """The process's Ray metric `name`, made on first use."""
    made = _MADE.get(name)
    if made is None:
        made = _MADE[name] = _make(name)
    return made


def _make(name: str) -> Any:
    from ray.util import metrics

    kind, description, keys = _METRICS[name]
    tag_keys = ("campaign", "problem", *keys)
    if kind == "counter":
        return metrics.Counter(name, description=description, tag_keys=tag_keys)
    if kind == "gauge":
        return metrics.Gauge(name, description=description, tag_keys=tag_keys)
    return metrics.Histogram(name, description=description, boundaries=_LATENCY_BOUNDS, tag_keys=tag_keys)


class CampaignMetrics:
    """Records one campaign's figures as Ray metrics; every method is a no-op when `enabled` is false.

    Not thread-safe: call it from the controller's event loop. `sign` is -1 for a minimised problem, so
    that scores are exported as the evaluator gives them.
    """

    def __init__(self, campaign: str, problem: str, sign: int = 1, enabled: bool = True) -> None:
        self.enabled = enabled
        self._tags = {"campaign": campaign, "problem": problem}
        self._sign = sign
        self._sums: dict[tuple, float] = {}  # (metric, how, tags) -> what to add (`inc`) or set (`set`)
        self._observed: list[tuple[str, float, dict[str, str]]] = []  # histogram observations, each kept
        self._flushed = time.monotonic()
        self._ray_up = False

    def _put(self, name: str, how: str, value: float, **tags: str) -> None:
        """`how` is `inc`, `set` or `observe`; sent with the next flush."""
        if how == "observe":
            self._observed.append((name, value, {**self._tags, **tags}))
        else:
            key = (name, how, tuple(sorted(tags.items())))
            self._sums[key] = self._sums.get(key, 0.0) + value if how == "inc" else value
        self.flush()

    def flush(self, final: bool = False) -> None:
        """Send what was recorded to Ray: when a second has passed, or now with `final` (once Ray is up)."""
        now = time.monotonic()
        if not final and now - self._flushed < FLUSH_SECONDS:
            return
        if not self._ray_up:
            if not ray_connected():
                return
            self._ray_up = True
        self._flushed = now
        sums, observed = self._sums, self._observed
        self._sums, self._observed = {}, []
        try:
            for (name, how, tags), value in sums.items():
                getattr(_metric(name), how)(value, tags={**self._tags, **dict(tags)})
            for name, value, tags in observed:
                _metric(name).observe(value, tags=tags)
        except Exception as exc:  # noqa: BLE001 (figures for a dashboard must never stop a campaign)
            self.enabled = False
            _log.warning("Ray metrics are off for the rest of this campaign: %s: %s", type(exc).__name__, exc)

    def record(self, program: Program) -> None:
        """A committed program: its status, and the proposer call that made it."""
        if not self.enabled:
            return
        self._put("evolve_programs", "inc", 1, status=program.status.value)
        if program.iteration == 0 or not program.proposer:
            return  # the initial program: no proposer call
        model = program.proposer
        failed = program.status is ProgramStatus.PROPOSAL_FAILED
        self._put("evolve_llm_calls", "inc", 1, model=model, outcome="failed" if failed else "ok")
        if program.prompt_tokens:
            self._put("evolve_llm_tokens", "inc", program.prompt_tokens, model=model, kind="prompt")
        if program.completion_tokens:
            self._put("evolve_llm_tokens", "inc", program.completion_tokens, model=model, kind="completion")
        if program.cost:
            self._put("evolve_llm_cost_usd", "inc", program.cost, model=model)

    def evaluation(self, result: EvaluationResult) -> None:
        """One evaluation: the time of each stage it reached, and its failure's kind."""
        if not self.enabled:
            return
        outcome = "valid" if result.valid else "invalid"
        for stage, seconds in result.stage_seconds.items():
            self._put("evolve_evaluation_seconds", "observe", seconds, stage=stage, outcome=outcome)
        kind = result.failure or ("" if result.valid else "evaluator_error" if result.evaluator_error else "rejected")
        if kind:
            self._put("evolve_sandbox_failures", "inc", 1, kind=kind)

    def update(self, stats: Stats, final: bool = False) -> None:
        """The campaign's running figures: rate, valid share, in flight, best (already natural); `final`
        (at the stop) sends everything recorded."""
        if not self.enabled:
            return
        self._put("evolve_evals_per_second", "set", stats.evals_per_second)
        self._put("evolve_valid_share", "set", stats.valid_share)
        self._put("evolve_in_flight", "set", stats.in_flight)
        if stats.best is not None:
            self._put("evolve_best_score", "set", stats.best)
        if final:
            self.flush(final=True)

    def validation(self, score: float | None) -> None:
        """A new best's validation score (as the engine holds it: maximised)."""
        if self.enabled and score is not None:
            self._put("evolve_best_validation_score", "set", score * self._sign)


class MeteredPool(Pool):
    """A pool whose evaluations are recorded by `metrics` on their way back; everything else is the pool's."""

    def __init__(self, pool: Pool, record: Callable[[EvaluationResult], None]) -> None:
        self._pool = pool
        self._record = record

    @property
    def size(self) -> int:
        """The wrapped pool's size now."""
        return self._pool.size

    async def evaluate(self, code: str) -> EvaluationResult:
        """The wrapped pool's `evaluate`, recorded."""
        result = await self._pool.evaluate(code)
        self._record(result)
        return result

    async def validate(self, code: str) -> EvaluationResult | None:
        """The wrapped pool's `validate`."""
        return await self._pool.validate(code)

    def shutdown(self) -> None:
        """Shut the wrapped pool down."""
        self._pool.shutdown()

    async def ready(self) -> None:
        """The wrapped pool's `ready`."""
        await self._pool.ready()

    async def layers(self) -> dict[str, str]:
        """The wrapped pool's `layers`."""
        return await self._pool.layers()

    def watch(self, seconds_left: Callable[[], float | None]) -> None:
        """The wrapped pool's `watch`."""
        self._pool.watch(seconds_left)

    def begin(self) -> None:
        """The wrapped pool's `begin`."""
        self._pool.begin()
