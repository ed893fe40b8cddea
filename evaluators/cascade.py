"""Runs an evaluator's cascade against one candidate program inside a sandbox session."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluators.base import Evaluator
from evaluators.score import Score
from sandboxes import CandidateCrash, CandidateError, CandidateTimeout, Sandbox, SandboxLimits
from sandboxes.text import candidate_text

__all__ = ["EvaluationResult", "evaluate_held_out", "evaluate_program"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """The outcome of evaluating one program: plain data, safe to send between processes.

    Attributes:
        valid: the candidate passed every stage it reached.
        score: the final stage's value (None when invalid).
        metrics: metrics of every stage reached (earlier stages' keys prefixed with `stage.`).
        features: MAP-Elites coordinates from the final stage.
        feedback: the evaluator's text about the program, or the failure reason (through the gate for
            candidate text, `sandboxes.candidate_text`: it may quote the candidate).
        stage: the last stage reached.
        seconds: wall time of the whole evaluation, sandbox start included.
        output: the tail of the candidate's stdout and stderr (through the same gate).
        evaluator_error: the evaluator itself raised (a bug in trusted code, not the candidate's fault).
        stage_seconds: wall time per stage reached (`load`: starting sandbox sessions).
        failure: what failed, by kind: "" (nothing), `timeout`, `crash` or `candidate_error` (the
            sandbox's `CandidateError` kinds), `evaluator_error`, or `rejected` (the evaluator's verdict).
    """

    valid: bool
    score: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    feedback: str = ""
    stage: str = ""
    seconds: float = 0.0
    output: str = ""
    evaluator_error: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)
    failure: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for Ray and the database."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        """Inverse of `to_dict`."""
        return cls(**data)


class NotAScore(TypeError):
    """A stage (or held-out hook) returned something other than a `Score`."""


def _checked(score: Any, where: str) -> Score:
    """`score.checked()`, or a one-line `NotAScore` when the evaluator returned something else."""
    if not isinstance(score, Score):
        raise NotAScore(f"{where} returned {type(score).__name__}; return Score(value=...)")
    return score.checked()


def _where(exc: BaseException) -> str:
    """` (file:line)` of the evaluator's own line that raised: the last frame outside this package, the sandbox
    and the installed libraries (else the last frame)."""
    import sysconfig
    from pathlib import Path

    import sandboxes

    paths = sysconfig.get_paths()
    skip = tuple(str(Path(p).resolve()) for p in (Path(__file__).parent, Path(sandboxes.__file__).parent,
                                                  paths["stdlib"], paths["purelib"]))
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not str(Path(f.filename).resolve()).startswith(skip)] or frames
    return f" ({Path(own[-1].filename).name}:{own[-1].lineno})" if own else ""


def _failure_kind(error: BaseException) -> str:
    """The kind of a candidate's failure in a sandbox: `timeout`, `crash` or `candidate_error`."""
    if isinstance(error, CandidateTimeout):
        return "timeout"
    return "crash" if isinstance(error, CandidateCrash) else "candidate_error"


def _prepare(evaluator: Evaluator, code: str) -> None:
    """An evaluator that needs the candidate's source (an adapter that hands it over as a file) gets
    it through an optional `prepare(code)` method; the candidate still runs only in the session."""
    prepare = getattr(evaluator, "prepare", None)
    if callable(prepare):
        prepare(code)


def evaluate_program(evaluator: Evaluator, sandbox: Sandbox, code: str, limits: SandboxLimits,
                     stage_limits: dict[str, SandboxLimits] | None = None) -> EvaluationResult:
    """Load `code` into a sandbox session and run the evaluator's cascade on it.

    Stages share one session, except a stage named in `stage_limits`, which gets a session of its own
    with those limits.
    """
    start = time.perf_counter()
    stage_limits = stage_limits or {}
    metrics: dict[str, Any] = {}
    stage_name, output = "load", ""
    score: Score | None = None
    evaluator_error = False
    failure = ""
    timings: dict[str, float] = {}
    _prepare(evaluator, code)
    with contextlib.ExitStack() as sessions:
        session, session_limits = None, None
        try:
            stages = evaluator.stages()
            for stage in stages:
                wanted = stage_limits.get(stage.name, limits)
                if session is None or wanted != session_limits:
                    if session is not None:
                        output = session.output
                    stage_name = "load"
                    began = time.perf_counter()
                    try:
                        session = sessions.enter_context(sandbox.session(code, wanted))
                    finally:
                        timings["load"] = timings.get("load", 0.0) + time.perf_counter() - began
                    session_limits = wanted
                stage_name = stage.name
                began = time.perf_counter()
                try:
                    score = _checked(stage.run(session), f"stage {stage.name}")
                except CandidateError as exc:
                    score = Score.invalid(f"stage {stage.name}: {exc}")
                    failure = _failure_kind(exc)
                except Exception as exc:  # noqa: BLE001 (the evaluator's own bug: say so, do not blame the candidate)
                    evaluator_error = True
                    failure = "evaluator_error"
                    _log.error("evaluator %s raised in stage %s:\n%s", type(evaluator).__name__,
                               stage.name, traceback.format_exc())
                    score = Score.invalid(f"evaluator error: {exc}" if isinstance(exc, NotAScore) else
                                          f"evaluator error in stage {stage.name}: {type(exc).__name__}: {exc}"
                                          f"{_where(exc)}")
                finally:
                    timings[stage.name] = time.perf_counter() - began
                if score.metrics:
                    metrics.update({f"{stage.name}.{k}": v for k, v in score.metrics.items()})
                if not score.valid:
                    break
                if stage.gate is not None and not stage.gate(score):
                    if stage is not stages[-1]:  # said, so that a prompt does not read a subset's score as the whole
                        score = dataclasses.replace(score, feedback=f"{score.feedback}\n(scored on stage {stage.name} "
                                                    f"only: its gate held the program back from the later stages)")
                    break
            if session is not None:
                output = session.output
        except CandidateError as exc:
            score = Score.invalid(f"stage {stage_name}: {exc}")
            failure = _failure_kind(exc)
    if score is None:
        score = Score.invalid("the evaluator declared no stages")
        evaluator_error = True
        failure = "evaluator_error"
    final_metrics = {**metrics, **score.metrics}
    for key in score.metrics:
        final_metrics.pop(f"{stage_name}.{key}", None)
    return EvaluationResult(
        valid=score.valid,
        score=float(score.value) + 0.0 if score.valid else None,  # + 0.0: a -0.0 (say -excess) reads 0
        metrics={k: candidate_text(v, "result") if isinstance(v, str) else v for k, v in final_metrics.items()},
        features=dict(score.features),
        feedback=candidate_text(score.feedback, "result"),
        stage=stage_name,
        seconds=time.perf_counter() - start,
        output=candidate_text(output, "result"),
        evaluator_error=evaluator_error,
        stage_seconds=timings,
        failure=failure or ("" if score.valid else "rejected"),
    )


def evaluate_held_out(evaluator: Evaluator, sandbox: Sandbox, code: str, limits: SandboxLimits,
                      which: str = "validate") -> EvaluationResult | None:
    """Score `code` with the evaluator's `validate` (or `test`) hook; None when it has no such data."""
    hook = getattr(evaluator, which)
    if getattr(type(evaluator), which) is getattr(Evaluator, which):
        return None
    start = time.perf_counter()
    _prepare(evaluator, code)
    try:
        with sandbox.session(code, limits) as session:
            score = hook(session)
            if score is None:
                return None
            score = _checked(score, which)
    except CandidateError as exc:
        score = Score.invalid(f"{which}: {exc}")
    return EvaluationResult(valid=score.valid, score=float(score.value) + 0.0 if score.valid else None,
                            metrics=dict(score.metrics), features=dict(score.features),
                            feedback=candidate_text(score.feedback, "result"),
                            stage=which, seconds=time.perf_counter() - start)
