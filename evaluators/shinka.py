"""Run a ShinkaEvolve `evaluate.py` unchanged, with the candidate still in the sandbox.

ShinkaEvolve's convention: `evaluate.py` defines `main(program_path, results_dir)`, which scores the
program (usually through `shinka.core.run_shinka_eval(program_path=..., results_dir=...,
experiment_fn_name=..., num_runs=..., get_experiment_kwargs=..., validate_fn=...,
aggregate_metrics_fn=...)`) and leaves `metrics.json` and `correct.json` (`{"correct": bool, "error":
str | None}`) in `results_dir`. `ShinkaEvaluator` loads `evaluate.py` in the (trusted) worker and, for
each candidate, calls `main` with a registered candidate file (`evaluators.program_file`: loading it with
importlib gives a proxy whose functions run in the sandbox session) and a fresh results dir, then reads
the two files.

When the package `shinka` is not installed, `from shinka.core import run_shinka_eval` gets this module's
`run_shinka_eval`, which keeps the convention: each run calls the experiment function with
`get_experiment_kwargs(run)` (`{"seed": run + 1}` without it), `validate_fn(result) -> (ok, message)`
marks a run wrong, `aggregate_metrics_fn(results)` makes the metrics (run counts and times are added),
and an exception anywhere gives the default error metrics with `correct: false`. Runs are sequential
(`run_workers` is ignored: the candidate has one session), and plots and `extra_data` are not made.

The score is `combined_score`, else the problem's `metric:`, else the mean of the numeric metrics but timings;
`public` metrics join the metrics and the feedback, `private` ones neither, `text_feedback` goes into the
feedback. `correct: false` is invalid with its error as the reason.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from evaluators.base import Evaluator, Stage
from evaluators.openevolve import score_of
from evaluators.program_file import GUARD_REASON, load_evaluator_module, program_file, timing_names
from evaluators.score import Score
from sandboxes import Session

__all__ = ["ShinkaEvaluator", "run_shinka_eval"]

_ON_ERROR: dict[str, Any] = {"combined_score": 0.0, "execution_time_mean": 0.0, "execution_time_std": 0.0,
                             "num_successful_runs": 0, "num_valid_runs": 0, "num_invalid_runs": 0,
                             "all_validation_errors": []}


def _write(results_dir: str, metrics: dict[str, Any], correct: bool, error: str | None) -> None:
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": correct, "error": error}, f)
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, default=str)


def run_shinka_eval(program_path: str, results_dir: str, experiment_fn_name: str, num_runs: int = 1,
                    get_experiment_kwargs: Callable[[int], dict[str, Any]] | None = None,
                    aggregate_metrics_fn: Callable[[list[Any]], dict[str, Any]] | None = None,
                    validate_fn: Callable[[Any], tuple[bool, str | None]] | None = None,
                    default_metrics_on_error: dict[str, Any] | None = None,
                    **ignored: Any) -> tuple[dict[str, Any], bool, str | None]:
    """Run the program's experiment `num_runs` times, validate and aggregate; write metrics.json and
    correct.json into `results_dir`; return (metrics, correct, first error)."""
    results: list[Any] = []
    seconds: list[float] = []
    errors: list[str] = []
    valid = 0
    try:
        spec = importlib.util.spec_from_file_location("program", program_path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {program_path}")
        program = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(program)
        experiment = getattr(program, experiment_fn_name)
        for run in range(num_runs):
            kwargs = get_experiment_kwargs(run) if get_experiment_kwargs else {"seed": run + 1}
            started = time.perf_counter()
            result = experiment(**kwargs)
            seconds.append(time.perf_counter() - started)
            results.append(result)
            if validate_fn is None:
                continue
            ok, message = validate_fn(result)
            valid += bool(ok)
            if not ok and message and message not in errors:
                errors.append(message)
        metrics: dict[str, Any] = (aggregate_metrics_fn(results) if aggregate_metrics_fn
                                   else {"num_successful_runs": len(results)})
        mean = sum(seconds) / len(seconds) if seconds else 0.0
        metrics["execution_time_mean"] = mean
        metrics["execution_time_std"] = math.sqrt(sum((s - mean) ** 2 for s in seconds) / max(len(seconds), 1))
        if validate_fn is not None:
            metrics.update(num_valid_runs=valid, num_invalid_runs=len(results) - valid, all_validation_errors=errors)
        correct = validate_fn is None or valid == len(results)
        error = f"Validation failed: {errors[0]}" if errors else None if correct else "Validation failed"
        score = metrics.get("combined_score")
        if isinstance(score, (int, float)) and not math.isfinite(score):
            correct, error = False, error or f"combined_score is {score}"
    except Exception as exc:  # noqa: BLE001 (the convention: an exception makes the program incorrect)
        metrics = {**_ON_ERROR, **(default_metrics_on_error or {})}
        if validate_fn is not None:
            metrics["all_validation_errors"] = [str(exc)]
        correct, error = False, str(exc) or type(exc).__name__
    metrics.pop("extra_data", None)
    _write(results_dir, metrics, correct, error)
    return metrics, correct, error


def _ensure_shinka_names() -> None:
    """`from shinka.core import run_shinka_eval` works without the package."""
    if "shinka" in sys.modules or importlib.util.find_spec("shinka") is not None:
        return
    package = types.ModuleType("shinka")
    package.__path__ = []
    core = types.ModuleType("shinka.core")
    core.run_shinka_eval = run_shinka_eval  # type: ignore[attr-defined]
    package.core = core  # type: ignore[attr-defined]
    sys.modules.setdefault("shinka", package)
    sys.modules.setdefault("shinka.core", core)


def _flat(metrics: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Shinka's metrics as OpenEvolve-style ones (public folded in, private left out) and its text feedback."""
    flat = {k: v for k, v in metrics.items() if k not in ("public", "private", "text_feedback")}
    public = metrics.get("public")
    if isinstance(public, dict):
        flat.update({k: v for k, v in public.items() if k not in flat})
    return flat, str(metrics.get("text_feedback") or "")


class ShinkaEvaluator(Evaluator):
    """A ShinkaEvolve `evaluate.py` run as an evolve evaluator (see the module's docstring).

    Args:
        path: the `evaluate.py` (`problem.evaluator: "shinka:evaluate.py"` fills it in from the folder).
        entrypoint: the function the initial program must define (checked before a campaign), if any.
        reference_scores: reference scores by name (`combined_score` units), for the charts.
        metric: the metric that is the score when the metrics hold no `combined_score`.
    """

    entrypoint: ClassVar[str | None] = None  # type: ignore[assignment]

    def __init__(self, path: str, entrypoint: str | None = None, reference_scores: dict | None = None,
                 metric: str | None = None) -> None:
        self.path = Path(path)
        if entrypoint:
            self.entrypoint = entrypoint  # type: ignore[misc]
        self._references = {str(k): float(v) for k, v in (reference_scores or {}).items()}
        self.metric = metric
        self.module = self._load()
        self.timing_metrics = tuple(dict.fromkeys(  # type: ignore[misc]
            ("execution_time_mean", "execution_time_std") + timing_names(self.path)))

    def _load(self) -> types.ModuleType:
        _ensure_shinka_names()
        module = load_evaluator_module(self.path, "ShinkaEvolve")
        if not callable(getattr(module, "main", None)):
            raise ValueError(f"{self.path} defines no main(program_path, results_dir), ShinkaEvolve's entry point")
        return module

    _code = ""

    def prepare(self, code: str) -> None:
        """The candidate's source, for `program_path` (the cascade calls this before the stages)."""
        self._code = code

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """The `reference_scores` of the problem's params (the same on every split)."""
        return dict(self._references)

    def stages(self) -> list[Stage]:
        return [Stage("evaluate", self._run)]

    def _run(self, candidate: Session) -> Score:
        results_dir = tempfile.mkdtemp(prefix="evolve-shinka-results-")
        try:
            with program_file(candidate, self._code) as program:
                try:
                    self.module.main(program.path, results_dir)
                except Exception as exc:
                    if program.fired:
                        raise RuntimeError(f"evaluate: {GUARD_REASON}") from exc
                    raise
                if program.fired:
                    return Score.invalid(f"evaluate: {GUARD_REASON}")
            return self._read(results_dir)
        finally:
            shutil.rmtree(results_dir, ignore_errors=True)

    def _read(self, results_dir: str) -> Score:
        """The score main() left in `results_dir` (metrics.json and correct.json)."""
        try:
            with open(os.path.join(results_dir, "correct.json")) as f:
                correct = json.load(f)
            with open(os.path.join(results_dir, "metrics.json")) as f:
                metrics = json.load(f)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{self.path.name}'s main() left no readable correct.json and metrics.json in "
                               f"results_dir ({exc}); write them as run_shinka_eval does") from exc
        flat, text = _flat(metrics if isinstance(metrics, dict) else {})
        if not (isinstance(correct, dict) and correct.get("correct")):
            error = correct.get("error") if isinstance(correct, dict) else None
            flat["error"] = str(error or "the program is not correct (correct.json)")
        score = score_of(flat, "evaluate", self.metric, self.path.name, self.timing_metrics)
        return dataclasses.replace(score, feedback=f"{score.feedback} | {text}") if text and score.valid else score
