"""One evaluation slot: a problem's evaluator and one sandbox, scoring programs one at a time.

A Ray actor (`evolve.evaluation.ray_pool.EvaluationWorker`) holds one; so does each thread of the local pool
that scores programs while Ray starts (`evolve.evaluation.local_pool`). The evaluator is trusted and runs here;
the candidate runs only in the sandbox.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from evaluators.cascade import evaluate_held_out, evaluate_program
from evolve.config import ProblemConfig, SandboxConfig

__all__ = ["EvaluationSlot"]


class _Tracebacks(logging.Handler):
    """Keeps what the evaluator API logs at ERROR (an evaluator's traceback) for the controller's log,
    from the thread of the evaluation under way only (the local pool runs several slots in one process)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []
        self.thread: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))


class EvaluationSlot:
    """Builds the evaluator and the sandbox, then scores programs; `error` says why it could not be built.

    The sandbox's fork server is started here, with the slot, so the first evaluation does not pay for it.
    `run_seed` is the campaign's seed, handed to the evaluator (`Evaluator.run_seed`).
    """

    def __init__(self, problem: ProblemConfig, sandbox: SandboxConfig, run_seed: int = 0) -> None:
        from evolve.errors import EvolveError
        from evolve.evaluation.sandboxing import make_sandbox
        from evolve.problems import load_evaluator
        from sandboxes import SandboxUnavailable

        self.problem = problem
        self.error: str | None = None
        self.sandbox = None
        self._tracebacks = _Tracebacks()
        logging.getLogger("evaluators").addHandler(self._tracebacks)
        try:
            self.evaluator = load_evaluator(problem, run_seed=run_seed)
            self.sandbox = make_sandbox(sandbox, problem)
            self.sandbox.warm()
        except (EvolveError, SandboxUnavailable) as exc:  # kept for `ready`: an actor that dies here says only "died"
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 (the sandbox's set-up failed some other way: still one line)
            self.error = f"sandbox={sandbox.kind} could not be set up: {type(exc).__name__}: {exc}"

    def evaluate(self, code: str) -> dict[str, Any]:
        """Score `code`; returns plain data only (never an object the candidate built), plus the
        evaluator's traceback under `traceback` when it raised."""
        self._tracebacks.lines.clear()
        self._tracebacks.thread = threading.get_ident()
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

    def close(self) -> None:
        """Stop the sandbox's fork server; sessions still running are killed with it."""
        logging.getLogger("evaluators").removeHandler(self._tracebacks)
        if self.sandbox is not None:
            self.sandbox.close()
