"""What the campaign asks of its evaluation slots, and what every kind of pool shares.

    EvaluationPool (evolve.evaluation.ray_pool)   Ray actors, one slot each: local instance or cluster
    LocalPool (evolve.evaluation.local_pool)     threads of this process, one slot each, while Ray starts
    HandoverPool (evolve.evaluation.handover)    the local pool until Ray's workers are up, then Ray's
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol, runtime_checkable

from evaluators.cascade import EvaluationResult
from evolve.errors import ConfigError

__all__ = ["Pool", "pool_size", "result_from_data", "evaluator_raised", "validation_failed", "ray_connected"]

_log = logging.getLogger("evolve.evaluation.ray_pool")


@runtime_checkable
class Pool(Protocol):
    """Evaluation slots: `size` programs scored at once, each in a sandbox."""

    @property
    def size(self) -> int:
        """How many programs it scores at once."""

    async def ready(self) -> None:
        """Raise `ConfigError` with the reason when the evaluator or the sandbox cannot be built."""

    async def layers(self) -> dict[str, str]:
        """The sandbox's protection report."""

    async def evaluate(self, code: str) -> EvaluationResult:
        """Score `code` on the next free slot."""

    async def validate(self, code: str) -> EvaluationResult | None:
        """Score `code` on the validation data (None: the problem has none, or scoring failed)."""

    def shutdown(self) -> None:
        """Release every slot."""


def pool_size(num_workers: int | None, worker_cpus: float, cpus: float) -> int:
    """How many slots fit: `num_workers`, or as many as `cpus` hold at `worker_cpus` each; one line
    saying what to change when they do not fit (a pool would otherwise wait for slots never placed)."""
    if worker_cpus <= 0:
        raise ConfigError(f"ray.worker_cpus={worker_cpus:g}: an evaluation worker needs a share of a CPU (> 0)")
    fits = int(cpus / worker_cpus + 1e-9)
    if num_workers is None:
        return max(1, fits)
    if num_workers * worker_cpus > cpus + 1e-9:
        raise ConfigError(f"asked for {num_workers} evaluation workers of {worker_cpus:g} CPU each, but the "
                          f"cluster has {cpus:g} CPUs; set ray.num_workers={max(fits, 1)} or "
                          f"ray.worker_cpus={cpus / num_workers:.2g}")
    return num_workers


def result_from_data(data: dict[str, Any]) -> EvaluationResult:
    """A slot's plain-data result as an `EvaluationResult`; an evaluator's traceback goes to the log file."""
    traceback = data.pop("traceback", "")
    result = EvaluationResult.from_dict(data)
    if result.evaluator_error:
        _log.error("%s\n%s", result.feedback, traceback or "(no traceback was logged)", extra={"file_only": True})
    return result


def evaluator_raised(cause: BaseException, details: str) -> EvaluationResult:
    """The result of trusted evaluator code that raised outside its cascade's guard (`details`: the
    traceback, for the log file only)."""
    _log.error("the evaluator raised outside its cascade:\n%s", details, extra={"file_only": True})
    return EvaluationResult(valid=False, score=None, feedback=f"evaluation failed: {cause!r}"[:500],
                            evaluator_error=True)


def validation_failed(cause: BaseException, details: str) -> None:
    """Say that an evaluator's validation raised: one line on the terminal, `details` in the log file."""
    _log.error("validation failed:\n%s", details, extra={"file_only": True})
    _log.warning("validation failed: %s: %s (traceback in campaign.log)", type(cause).__name__,
                 " ".join(str(cause).split())[:300])


TASK_EVENTS_ENV = "RAY_task_events_report_interval_ms"  # how often Ray's core worker reports task events (ms)


def ray_connected() -> bool:
    """Whether this process is connected to Ray, without importing Ray: Ray's start may be importing it on
    another thread (the module is then in `sys.modules`, partly initialised), and an import here would wait."""
    is_initialized = getattr(sys.modules.get("ray"), "is_initialized", None)
    return is_initialized is not None and is_initialized()
