"""Evaluation on Ray: a pool of actors, each holding one evaluator and one sandbox."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from evaluators.cascade import EvaluationResult, evaluate_held_out, evaluate_program
from evolve.config import ProblemConfig, RayConfig, SandboxConfig

__all__ = ["EvaluationWorker", "EvaluationPool", "WorkerDied", "connect"]

_log = logging.getLogger(__name__)


def connect(config: RayConfig) -> None:
    """Start a local Ray instance, or join `config.address`; a no-op when Ray is already up."""
    if ray.is_initialized():
        return
    if config.address:
        ray.init(address=config.address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(num_cpus=config.num_cpus, include_dashboard=config.include_dashboard,
                 dashboard_host=config.dashboard_host, logging_level=logging.WARNING,
                 log_to_driver=False, _node_ip_address="127.0.0.1")


class WorkerDied(Exception):
    """An evaluation actor died while holding a program; it has been replaced."""


@ray.remote(num_cpus=1)
class EvaluationWorker:
    """One evaluator instance and one sandbox, scoring programs one at a time."""

    def __init__(self, problem: ProblemConfig, sandbox: SandboxConfig) -> None:
        from evolve.errors import EvolveError
        from evolve.problems import load_evaluator
        from evolve.sandboxing import make_sandbox
        from sandboxes import SandboxUnavailable

        self.problem = problem
        self.error: str | None = None
        try:
            self.evaluator = load_evaluator(problem)
            self.sandbox = make_sandbox(sandbox)
        except (EvolveError, SandboxUnavailable) as exc:  # kept for `ready`: an actor that dies here says only "died"
            self.error = str(exc)

    def ready(self) -> str | None:
        """None when the evaluator and sandbox were built, else the one-line reason they were not."""
        return self.error

    def evaluate(self, code: str) -> dict[str, Any]:
        """Score `code`; returns plain data only (never an object the candidate built)."""
        return evaluate_program(self.evaluator, self.sandbox, code, self.problem.limits,
                                self.problem.stage_limits).to_dict()

    def validate(self, code: str) -> dict[str, Any] | None:
        """Score `code` on the problem's validation data (None when it has none)."""
        result = evaluate_held_out(self.evaluator, self.sandbox, code, self.problem.limits, "validate")
        return result.to_dict() if result is not None else None

    def layers(self) -> dict[str, str]:
        """The sandbox's protection report."""
        return self.sandbox.layers()


class EvaluationPool:
    """Hands programs to idle actors; sized from the cluster's CPUs unless told.

    A worker that dies (a crashed Ray worker process, an out-of-memory kill) is replaced, and the
    program it held is reported as invalid rather than lost.
    """

    def __init__(self, problem: ProblemConfig, sandbox: SandboxConfig, num_workers: int | None = None) -> None:
        if num_workers is None:
            num_workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.problem = problem
        self.sandbox = sandbox
        self.size = num_workers
        self._actors = [self._spawn() for _ in range(num_workers)]
        self._idle: asyncio.Queue | None = None

    def _spawn(self):
        return EvaluationWorker.remote(self.problem, self.sandbox)

    def _queue(self) -> asyncio.Queue:
        if self._idle is None:  # created lazily so it binds to the running event loop
            self._idle = asyncio.Queue()
            for actor in self._actors:
                self._idle.put_nowait(actor)
        return self._idle

    async def ready(self) -> None:
        """Wait until every worker is up; raise ConfigError with a worker's reason when one is not."""
        from evolve.errors import ConfigError

        for reason in await asyncio.gather(*(actor.ready.remote() for actor in self._actors)):
            if reason:
                raise ConfigError(reason)

    async def layers(self) -> dict[str, str]:
        """The sandbox protection report of one worker."""
        actor = await self._queue().get()
        try:
            return await actor.layers.remote()
        finally:
            self._queue().put_nowait(actor)

    async def _call(self, method: str, code: str) -> Any:
        """Run `method(code)` on the next idle actor; a dead actor is replaced and WorkerDied raised."""
        queue = self._queue()
        actor = await queue.get()
        try:
            result = await getattr(actor, method).options(name=f"{method}:{self.problem.name}").remote(code)
        except RayActorError as exc:
            _log.warning("evaluation worker died (%s); starting a new one", exc)
            replacement = self._spawn()
            self._actors = [a for a in self._actors if a is not actor] + [replacement]
            queue.put_nowait(replacement)
            raise WorkerDied(str(exc)) from None
        except BaseException:
            queue.put_nowait(actor)
            raise
        queue.put_nowait(actor)
        return result

    async def evaluate(self, code: str) -> EvaluationResult:
        """Evaluate `code` on the next idle worker."""
        try:
            return EvaluationResult.from_dict(await self._call("evaluate", code))
        except RayTaskError as exc:  # trusted evaluator code raised outside the cascade's guard
            return EvaluationResult(valid=False, score=None, feedback=f"evaluation failed: {exc.cause!r}"[:500],
                                    evaluator_error=True)
        except WorkerDied:
            return EvaluationResult(valid=False, score=None, feedback="the evaluation worker died")

    async def validate(self, code: str) -> EvaluationResult | None:
        """Score `code` on the validation data (None: the problem has none, or scoring failed)."""
        try:
            data = await self._call("validate", code)
        except (RayTaskError, WorkerDied) as exc:
            _log.error("validation failed: %s", exc)
            return None
        return EvaluationResult.from_dict(data) if data is not None else None

    def shutdown(self) -> None:
        """Kill every actor."""
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
