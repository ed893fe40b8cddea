"""Evaluation on Ray: a pool of actors, each holding one evaluator and one sandbox."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from evaluators.cascade import EvaluationResult, evaluate_held_out, evaluate_program
from evolve.config import ProblemConfig, RayConfig, SandboxConfig
from evolve.errors import Interrupted

__all__ = ["EvaluationWorker", "EvaluationPool", "WorkerDied", "connect"]

_log = logging.getLogger(__name__)


def connect(config: RayConfig) -> None:
    """Start a local Ray instance, or join `config.address`; a no-op when Ray is already up.

    Ray's start-up replaces the SIGTERM handler with one that exits at once; the caller's is put back,
    and a SIGTERM during the start-up raises `Interrupted`.
    """
    if ray.is_initialized():
        return
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        if config.address:
            ray.init(address=config.address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(num_cpus=config.num_cpus, include_dashboard=config.include_dashboard,
                     dashboard_host=config.dashboard_host, logging_level=logging.WARNING,
                     log_to_driver=False, _node_ip_address="127.0.0.1")
    except SystemExit as exc:
        if exc.code == signal.SIGTERM:
            raise Interrupted("interrupted by SIGTERM", int(signal.SIGTERM)) from None
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class WorkerDied(Exception):
    """An evaluation actor died while holding a program; it has been replaced."""


class _Tracebacks(logging.Handler):
    """Keeps what the evaluator API logs at ERROR (an evaluator's traceback) for the controller's log."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


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
        self._tracebacks = _Tracebacks()
        logging.getLogger("evaluators").addHandler(self._tracebacks)
        try:
            self.evaluator = load_evaluator(problem)
            self.sandbox = make_sandbox(sandbox, problem)
        except (EvolveError, SandboxUnavailable) as exc:  # kept for `ready`: an actor that dies here says only "died"
            self.error = str(exc)
        except Exception as exc:  # the sandbox's set-up failed some other way: still one line
            self.error = f"sandbox={sandbox.kind} could not be set up: {type(exc).__name__}: {exc}"

    def ready(self) -> str | None:
        """None when the evaluator and sandbox were built, else the one-line reason they were not."""
        return self.error

    def evaluate(self, code: str) -> dict[str, Any]:
        """Score `code`; returns plain data only (never an object the candidate built), plus the
        evaluator's traceback under `traceback` when it raised."""
        self._tracebacks.lines.clear()
        result = evaluate_program(self.evaluator, self.sandbox, code, self.problem.limits,
                                  self.problem.stage_limits).to_dict()
        if result.get("evaluator_error"):
            result["traceback"] = "\n".join(self._tracebacks.lines)[-20_000:]
        return result

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

    def __init__(self, problem: ProblemConfig, sandbox: SandboxConfig, num_workers: int | None = None,
                 worker_cpus: float = 1.0, ready_timeout: float = 120.0) -> None:
        from evolve.errors import ConfigError

        if worker_cpus <= 0:
            raise ConfigError(f"ray.worker_cpus={worker_cpus:g}: an evaluation worker needs a share of a CPU (> 0)")
        cpus = ray.cluster_resources().get("CPU", 0)
        if num_workers is None:
            num_workers = max(1, int(cpus / worker_cpus + 1e-9))
        if num_workers * worker_cpus > cpus + 1e-9:  # the pool would wait for actors Ray can never place
            fits = int(cpus / worker_cpus + 1e-9)
            raise ConfigError(f"asked for {num_workers} evaluation workers of {worker_cpus:g} CPU each, but the "
                              f"cluster has {cpus:g} CPUs; set ray.num_workers={max(fits, 1)} or "
                              f"ray.worker_cpus={cpus / num_workers:.2g}")
        self.problem = problem
        self.sandbox = sandbox
        self.size = num_workers
        self.worker_cpus = worker_cpus
        self.ready_timeout = ready_timeout
        self._actors = [self._spawn() for _ in range(num_workers)]
        self._idle: asyncio.Queue | None = None

    def _spawn(self):
        return EvaluationWorker.options(num_cpus=self.worker_cpus).remote(self.problem, self.sandbox)

    def _queue(self) -> asyncio.Queue:
        if self._idle is None:  # created lazily so it binds to the running event loop
            self._idle = asyncio.Queue()
            for actor in self._actors:
                self._idle.put_nowait(actor)
        return self._idle

    async def ready(self) -> None:
        """Wait until every worker is up; raise ConfigError with a worker's reason when one is not."""
        from evolve.errors import ConfigError

        try:
            reasons = await asyncio.wait_for(asyncio.gather(*(actor.ready.remote() for actor in self._actors)),
                                             self.ready_timeout)
        except asyncio.TimeoutError:
            raise ConfigError(f"{self.size} evaluation workers were not up within ray.ready_timeout="
                              f"{self.ready_timeout:g} s (the cluster has {ray.cluster_resources().get('CPU', 0):g} "
                              "CPUs free for them now); lower ray.num_workers or raise ray.ready_timeout") from None
        for reason in reasons:
            if reason:
                raise ConfigError(reason)

    async def layers(self) -> dict[str, str]:
        """The sandbox protection report of one worker."""
        from evolve.errors import ConfigError

        actor = await self._queue().get()
        try:
            return await actor.layers.remote()
        except RayTaskError as exc:  # the sandbox cannot even start a session: one line, not Ray's traceback
            raise ConfigError(f"sandbox={self.sandbox.kind} does not work on this machine: "
                              f"{type(exc.cause).__name__}: {exc.cause}; see `evolve doctor`") from None
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
        """Evaluate `code` on the next idle worker; an evaluator's traceback goes to the log file only."""
        try:
            data = await self._call("evaluate", code)
        except RayTaskError as exc:  # trusted evaluator code raised outside the cascade's guard
            _log.error("the evaluator raised outside its cascade:\n%s", exc, extra={"file_only": True})
            return EvaluationResult(valid=False, score=None, feedback=f"evaluation failed: {exc.cause!r}"[:500],
                                    evaluator_error=True)
        except WorkerDied:
            return EvaluationResult(valid=False, score=None, feedback="the evaluation worker died")
        traceback = data.pop("traceback", "")
        result = EvaluationResult.from_dict(data)
        if result.evaluator_error:
            _log.error("%s\n%s", result.feedback, traceback or "(no traceback was logged)", extra={"file_only": True})
        return result

    async def validate(self, code: str) -> EvaluationResult | None:
        """Score `code` on the validation data (None: the problem has none, or scoring failed)."""
        try:
            data = await self._call("validate", code)
        except RayTaskError as exc:  # the evaluator's validate raised: one line here, the traceback in the log
            _log.error("validation failed:\n%s", exc, extra={"file_only": True})
            _log.warning("validation failed: %s: %s (traceback in campaign.log)", type(exc.cause).__name__,
                         " ".join(str(exc.cause).split())[:300])
            return None
        except WorkerDied as exc:
            _log.error("validation failed: %s", exc)
            return None
        return EvaluationResult.from_dict(data) if data is not None else None

    def shutdown(self) -> None:
        """Kill every actor."""
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
