"""Run an OpenEvolve-style evaluator unchanged, with the candidate still in the sandbox.

An OpenEvolve evaluator is a Python file with `evaluate(program_path) -> dict` (or an
`EvaluationResult(metrics=..., artifacts=...)`) and, for a cascade, `evaluate_stage1/2/3(program_path)`.
`OpenEvolveEvaluator` loads that file in the (trusted) worker and, for each stage, writes the candidate
to a temporary `program_path` (`evaluators.program_file`) and calls the stage function with it. Loading
that file the usual ways, from any module of the evaluator,

    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    centers, radii, total = program.run_packing()        # runs inside the sandbox session

or `__import__(stem)` / `importlib.import_module(stem)` with its folder on `sys.path`, gives a module
proxy whose functions call into the sandbox session: arguments (positional and keyword) and results
are JSON (numpy arrays come back as arrays, tuples as tuples), each call under `limits.call_timeout`;
an exception in the candidate raises `CandidateError` in the evaluator. Reading the file's text works
(it is the program after a guard line). Run any other way, the guard line fires: the stage is invalid
with the guard's reason even when the evaluator catches the error, an evaluator error when it does not.

The score is `combined_score` when the metrics hold it, else the problem's `metric:`, else the mean of
the numeric metrics but timings (as OpenEvolve does, with a warning naming them). A result with an `error` entry
is invalid (the error is the reason); artifacts go into the feedback. Stages run as a cascade:
`evaluate_stage1`, then (when it passes `cascade_thresholds[0]`) `evaluate_stage2`, then
`evaluate_stage3`; without stage functions, `evaluate` alone. When the package `openevolve` is not
installed, `from openevolve.evaluation_result import EvaluationResult` in the evaluator file gets this
module's `EvaluationResult`.

Refused when the adapter is built (one line naming the style and the fix, `UnsupportedEvaluator`):
evaluators that run the program in a process of their own (subprocess, os.system, process pools), with
runpy or exec of its text, or time it with `signal.alarm`. Not supported: module attributes of the
candidate that are not functions (constants); candidate results that are not JSON data.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from evaluators.base import Evaluator, Stage
from evaluators.program_file import (
    GUARD_REASON,
    UnsupportedEvaluator,
    load_evaluator_module,
    program_file,
    timing_names,
)
from evaluators.score import Score
from sandboxes import Session

__all__ = ["GUARD_REASON", "EvaluationResult", "OpenEvolveEvaluator", "UnsupportedEvaluator", "score_of"]

_log = logging.getLogger("evolve.adapters")  # with the engine's records: campaign.log and the terminal


@dataclass
class EvaluationResult:
    """OpenEvolve's result type: metrics (numbers) and artifacts (text or data for the next prompt)."""

    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)


def _averaged(names: list[str], source: str, left_out: list[str]) -> None:
    """Say once per set of metrics that the score is their mean."""
    key = (source, tuple(names))
    if key not in _warned:
        _warned.add(key)
        timing = f"; {', '.join(left_out)} left out: timings" if left_out else ""
        _log.warning("%s returns no combined_score: its score is the mean of %s (as OpenEvolve does%s); name the "
                     "metric to maximise with `metric:` in config.yaml", source, ", ".join(names), timing)


_warned: set[tuple[str, tuple[str, ...]]] = set()


def score_of(result: Any, stage: str, metric: str | None = None, source: str = "the evaluator",
             timing: tuple[str, ...] = ()) -> Score:
    """An OpenEvolve result (dict or EvaluationResult-like) as a `Score`: `combined_score`, else `metric`,
    else the mean of the numeric metrics but the `timing` ones (with a warning naming them)."""
    artifacts: dict[str, Any] = {}
    if hasattr(result, "metrics") and not isinstance(result, dict):
        artifacts = dict(getattr(result, "artifacts", None) or {})
        result = result.metrics
    elif isinstance(result, dict) and isinstance(result.get("metrics"), dict):  # {"metrics": ..., "artifacts": ...}
        artifacts = dict(result["artifacts"]) if isinstance(result.get("artifacts"), dict) else {}
        result = result["metrics"]
    elif isinstance(result, dict) and isinstance(result.get("artifacts"), dict):  # metrics beside an artifacts dict
        artifacts = dict(result["artifacts"])
        result = {k: v for k, v in result.items() if k != "artifacts"}
    if not isinstance(result, dict):
        raise TypeError(f"{stage} returned {type(result).__name__}; return a dict of metrics or an EvaluationResult")
    metrics = {k: (list(v) if isinstance(v, tuple) else v) for k, v in result.items()}
    numbers = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
    notes = "; ".join(f"{k}: {' '.join(str(v).split())[:400]}" for k, v in artifacts.items())
    error = metrics.get("error")
    if error:
        return Score.invalid(f"{stage}: {error}" + (f" | {notes}" if notes else ""),
                             **numbers)
    if "combined_score" in numbers:
        value = numbers["combined_score"]
    elif metric:
        if metric not in numbers:
            return Score.invalid(f"{stage} returned no numeric {metric!r} (the problem's metric); it returned "
                                 f"{', '.join(metrics) or 'nothing'}")
        value = numbers[metric]
    elif [k for k in numbers if k not in timing]:
        averaged = {k: v for k, v in numbers.items() if k not in timing}
        _averaged(list(averaged), source, [k for k in numbers if k in timing])
        value = sum(averaged.values()) / len(averaged)
    else:
        return Score.invalid(f"{stage} returned no numeric metrics")
    plain = {k: v for k, v in metrics.items() if k in numbers or isinstance(v, (str, bool, type(None)))}
    summary = ", ".join(f"{k}={v:.6g}" for k, v in numbers.items())
    return Score(value=value, metrics=plain, feedback=f"{summary}" + (f" | {notes}" if notes else ""))


def _gate(threshold: float | None) -> Callable[[Score], bool]:
    """Go on past a stage whose score is valid and reaches `threshold` (any valid score when it is None)."""
    return lambda score: score.valid and (threshold is None or score.value >= threshold)


def _ensure_openevolve_names() -> None:
    """`from openevolve.evaluation_result import EvaluationResult` works without the package."""
    if "openevolve" in sys.modules or importlib.util.find_spec("openevolve") is not None:
        return
    package = types.ModuleType("openevolve")
    package.__path__ = []
    result = types.ModuleType("openevolve.evaluation_result")
    result.EvaluationResult = EvaluationResult  # type: ignore[attr-defined]
    package.evaluation_result = result  # type: ignore[attr-defined]
    sys.modules.setdefault("openevolve", package)
    sys.modules.setdefault("openevolve.evaluation_result", result)


class OpenEvolveEvaluator(Evaluator):
    """An OpenEvolve evaluator file run as an evolve evaluator (see the module's docstring).

    Args:
        path: the OpenEvolve evaluator file (`problem.evaluator: "openevolve:evaluator.py"` fills it in
            from the problem folder).
        cascade_thresholds: the score a stage must reach for the next one to run.
        entrypoint: the function the initial program must define (checked before a campaign), if any.
        reference_scores: reference scores by name (`combined_score` units), for the charts and the
            search-quality benchmark: an OpenEvolve evaluator file declares none of its own.
        metric: the metric that is the score when a result holds no `combined_score` (the problem's
            `metric:`); without it, the mean of the numeric metrics but timings.
        timing_metrics: metrics that time the machine (exempt from the determinism check) besides those
            the evaluator's text names with `time`, `seconds`, `duration` or `elapsed` in them.
    """

    entrypoint: ClassVar[str | None] = None  # type: ignore[assignment]

    def __init__(self, path: str, cascade_thresholds: list | None = None, entrypoint: str | None = None,
                 reference_scores: dict | None = None, metric: str | None = None,
                 timing_metrics: list | None = None, **params: Any) -> None:
        self.path = Path(path)
        self._references = {str(k): float(v) for k, v in (reference_scores or {}).items()}
        self.cascade_thresholds = list(cascade_thresholds or [])
        if entrypoint:
            self.entrypoint = entrypoint  # type: ignore[misc]
        self.metric = metric
        self.params = params
        self.module = self._load()
        stages = ("evaluate", "stage1", "stage2", "stage3")
        self.timing_metrics = tuple(timing_metrics or ()) + tuple(  # type: ignore[misc]
            f"{s}.{m}" for s in stages for m in timing_metrics or ()) + timing_names(self.path, stages)

    def _load(self) -> types.ModuleType:
        _ensure_openevolve_names()
        module = load_evaluator_module(self.path, "OpenEvolve")
        if not callable(getattr(module, "evaluate", None)) and not callable(getattr(module, "evaluate_stage1", None)):
            raise ValueError(f"{self.path} defines neither evaluate(program_path) nor evaluate_stage1(program_path)")
        return module

    def _run(self, function: Callable[[str], Any], label: str, candidate: Session) -> Score:
        with program_file(candidate, self._code) as program:
            try:
                result = function(program.path)
            except Exception as exc:
                if program.fired:
                    raise RuntimeError(f"{label}: {GUARD_REASON}") from exc
                raise
            if program.fired:  # the evaluator caught the guard's error: the program is still not scored
                return Score.invalid(f"{label}: {GUARD_REASON}")
            return score_of(result, label, self.metric, self.path.name, self.timing_metrics)

    # -- the evaluator API -------------------------------------------------------------------------
    _code = ""

    def prepare(self, code: str) -> None:
        """The candidate's source, for `program_path` (the cascade calls this before the stages)."""
        self._code = code

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """The `reference_scores` of the problem's params (the same on every split)."""
        return dict(self._references)

    def stages(self) -> list[Stage]:
        module = self.module
        if not callable(getattr(module, "evaluate_stage1", None)):
            return [Stage("evaluate", lambda c: self._run(module.evaluate, "evaluate", c))]
        stages = []
        for n in (1, 2, 3):
            function = getattr(module, f"evaluate_stage{n}", None)
            if not callable(function):
                break
            threshold = self.cascade_thresholds[n - 1] if n - 1 < len(self.cascade_thresholds) else None
            stages.append(Stage(f"stage{n}", self._stage_runner(function, f"stage{n}"), _gate(threshold)))
        return stages

    def _stage_runner(self, function: Callable[[str], Any], label: str) -> Callable[[Session], Score]:
        """Return a stage's `run`: one OpenEvolve stage function on the candidate."""
        return lambda candidate: self._run(function, label, candidate)
