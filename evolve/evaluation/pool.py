"""What the campaign asks of its evaluation slots, and what every kind of pool shares.

    EvaluationPool (evolve.evaluation.ray_pool)   Ray actors, one slot each: local instance or cluster
    LocalPool (evolve.evaluation.local_pool)     threads of this process, one slot each, while Ray starts
    HandoverPool (evolve.evaluation.handover)    the local pool until Ray's workers are up, then Ray's
"""

from __future__ import annotations

import abc
import logging
import sys
from collections.abc import Callable
from typing import Any

from evaluators.cascade import EvaluationResult
from evolve.errors import ConfigError

__all__ = ["Pool", "evaluator_raised", "pool_size", "ray_connected", "result_from_data", "validation_failed"]

_log = logging.getLogger("evolve.evaluation.ray_pool")


class Pool(abc.ABC):
    """Evaluation slots: `size` programs scored at once, each in a sandbox. Subclass it for a new kind.

    Contract: every method is called from the campaign's one event loop; `evaluate` and `validate` are
    awaited concurrently (about twice `size` at once) and must be safe so. `evaluate` never raises for
    the candidate's sake: a hostile or broken program is an invalid `EvaluationResult`, and an evaluator
    that raised is one with `evaluator_error` set; it raises (`ConfigError`, `EvolveError`) only when the
    pool itself cannot go on. Results are the caller's: they are not mutated after return. The same code
    scores the same (the evaluator's determinism, not the pool's business). The hooks below do nothing
    by default; the campaign calls them in this order: `watch`, `ready`, `layers`, the initial program's
    `evaluate`, `begin` after the first iteration, then `evaluate`/`validate` until `shutdown`.

    Example (scores in this process, without a sandbox: for trusted code in tests only)::

        from evaluators.cascade import EvaluationResult
        from evolve.evaluation.pool import Pool

        class LengthPool(Pool):                  # shorter programs score higher
            size = 1

            async def evaluate(self, code):
                return EvaluationResult(valid=True, score=-float(len(code)))

            async def validate(self, code):
                return None                      # no validation data

            def shutdown(self):
                pass

    Hand one in as `Campaign(config, run_dir, pool=LengthPool())`; the campaign then leaves it running.
    """

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """How many programs are scored at once now (it may change once, e.g. Ray's workers taking over)."""

    @abc.abstractmethod
    async def evaluate(self, code: str) -> EvaluationResult:
        """Score `code` on the next free slot."""

    @abc.abstractmethod
    async def validate(self, code: str) -> EvaluationResult | None:
        """Score `code` on the validation data (None: the problem has none, or scoring failed)."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Release every slot (at the campaign's end, for a pool the campaign built)."""

    async def ready(self) -> None:
        """Called once before the first evaluation: raise `ConfigError` with the reason when the evaluator
        or the sandbox cannot be built (one line, before any program is scored)."""

    async def layers(self) -> dict[str, str]:
        """Called once after `ready`: the sandbox's protection report (layer: state; `NOT` in a state is
        warned about). None known by default."""
        return {}

    def watch(self, seconds_left: Callable[[], float | None]) -> None:
        """Called once at the set-up with how to read the campaign's expected seconds left (None: not
        known yet), for a pool whose start-up only pays off on a long campaign."""

    def begin(self) -> None:
        """Called once the campaign's first iteration is done: a pool may start heavy work (Ray) now
        without delaying the first proposals."""


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
