"""Run an OpenEvolve-style evaluator unchanged, with the candidate still in the sandbox.

An OpenEvolve evaluator is a Python file with `evaluate(program_path) -> dict` (or an
`EvaluationResult(metrics=..., artifacts=...)`) and, for a cascade, `evaluate_stage1/2/3(program_path)`.
`OpenEvolveEvaluator` loads that file in the (trusted) worker and, for each stage, writes the candidate
to a temporary `program_path` and calls the stage function with it. The file is a guard, not a program:
its first line raises, so running it in any other way (a subprocess, `runpy`, `exec(open(path).read())`)
fails loudly instead of running candidate code outside the sandbox. Loading it the usual way,

    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    centers, radii, total = program.run_packing()        # runs inside the sandbox session

(or `importlib.import_module(<its stem>)` after putting its folder on `sys.path`), gives a module proxy
whose functions call into the sandbox session (`Session.call`): arguments and results are JSON (numpy
arrays come back as lists, tuples as tuples), each call under `limits.call_timeout`; an exception in the
candidate raises `CandidateError` in the evaluator. Reading the file's text works (it is the program
after the guard line).

The score is `combined_score` when the metrics hold it, else the mean of the numeric metrics (as
OpenEvolve does). A result with an `error` entry is invalid (the error is the reason); artifacts go
into the feedback. Stages run as a cascade: `evaluate_stage1`, then (when it passes
`cascade_thresholds[0]`) `evaluate_stage2`, then `evaluate_stage3`; without stage functions,
`evaluate` alone. When the package `openevolve` is not installed, `from openevolve.evaluation_result
import EvaluationResult` in the evaluator file gets this module's `EvaluationResult`.

Not supported: evaluators that run the program in a subprocess of their own or exec its text; module
attributes that are not functions (constants, classes' instances) of the candidate; `signal.alarm`
timeouts (limits are the sandbox's); candidate results that are not JSON data.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import math
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from evaluators.base import Evaluator, Stage
from evaluators.parsing import parse
from evaluators.score import Score
from sandboxes import Session

__all__ = ["GUARD", "EvaluationResult", "OpenEvolveEvaluator", "score_of"]

GUARD = ("raise RuntimeError('evolve: this candidate runs only inside the sandbox; load it with "
         "importlib (spec_from_file_location) to call it there')  # noqa\n")


@dataclass
class EvaluationResult:
    """OpenEvolve's result type: metrics (numbers) and artifacts (text or data for the next prompt)."""

    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)


def score_of(result: Any, stage: str) -> Score:
    """An OpenEvolve result (dict or EvaluationResult-like) as a `Score`."""
    artifacts: dict[str, Any] = {}
    if hasattr(result, "metrics") and not isinstance(result, dict):
        artifacts = dict(getattr(result, "artifacts", None) or {})
        result = result.metrics
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
    elif numbers:
        value = sum(numbers.values()) / len(numbers)
    else:
        return Score.invalid(f"{stage} returned no numeric metrics")
    plain = {k: v for k, v in metrics.items() if k in numbers or isinstance(v, (str, bool, type(None)))}
    summary = ", ".join(f"{k}={v:.6g}" for k, v in numbers.items())
    return Score(value=value, metrics=plain, feedback=f"{summary}" + (f" | {notes}" if notes else ""))


def _gate(threshold: float | None) -> Callable[[Score], bool]:
    """Go on past a stage whose score is valid and reaches `threshold` (any valid score when it is None)."""
    return lambda score: score.valid and (threshold is None or score.value >= threshold)


def _functions(code: str) -> set[str]:
    """Names the program binds at top level (its callable surface, read without running it)."""
    try:
        tree = parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


class _Program(types.ModuleType):
    """The candidate as the evaluator sees it: each function a call into the sandbox session."""

    def __init__(self, name: str, path: str, session: Session, names: set[str]) -> None:
        super().__init__(name)
        self.__file__ = path
        session.keep_tuples = True  # `centers, radii, total = program.run_packing()`, as in OpenEvolve
        self._session, self._names = session, names

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__") or name not in self.__dict__.get("_names", ()):
            raise AttributeError(f"the program defines no {name!r}")
        session = self.__dict__["_session"]

        def remote(*args: Any, **kwargs: Any) -> Any:
            if kwargs:
                raise TypeError(f"{name}(): keyword arguments cannot be sent to the sandbox; pass them by position")
            return session.call(name, *args)

        remote.__name__ = name
        return remote


class _Loader(importlib.abc.Loader if hasattr(importlib, "abc") else object):  # type: ignore[misc]
    def __init__(self, adapter: OpenEvolveEvaluator) -> None:
        self.adapter = adapter

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.adapter._proxy(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        pass  # the program was loaded into the session already


class _UtilShim:
    def __init__(self, adapter: OpenEvolveEvaluator) -> None:
        self._adapter = adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.util, name)

    def spec_from_file_location(self, name: str, location: Any = None, *args: Any,
                                **kwargs: Any) -> importlib.machinery.ModuleSpec | None:
        if location is not None and self._adapter._is_program(location):
            return importlib.machinery.ModuleSpec(name, _Loader(self._adapter), origin=str(location))
        return importlib.util.spec_from_file_location(name, location, *args, **kwargs)

    module_from_spec = staticmethod(importlib.util.module_from_spec)


class _ImportlibShim:
    def __init__(self, adapter: OpenEvolveEvaluator) -> None:
        self._adapter = adapter
        self.util = _UtilShim(adapter)

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib, name)

    def import_module(self, name: str, package: str | None = None) -> types.ModuleType:
        path = self._adapter._path
        if path is not None and name == Path(path).stem:
            return self._adapter._proxy(name)
        return importlib.import_module(name, package)


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
    """

    entrypoint: ClassVar[str | None] = None  # type: ignore[assignment]

    def __init__(self, path: str, cascade_thresholds: list | None = None, entrypoint: str | None = None,
                 reference_scores: dict | None = None, **params: Any) -> None:
        self.path = Path(path)
        self._references = {str(k): float(v) for k, v in (reference_scores or {}).items()}
        self.cascade_thresholds = list(cascade_thresholds or [])
        if entrypoint:
            self.entrypoint = entrypoint  # type: ignore[misc]
        self.params = params
        self._session: Session | None = None
        self._path: str | None = None
        self._names: set[str] = set()
        self.module = self._load()

    def _load(self) -> types.ModuleType:
        if not self.path.is_file():
            raise ValueError(f"OpenEvolve evaluator {self.path} does not exist")
        _ensure_openevolve_names()
        folder = str(self.path.parent.resolve())
        if folder not in sys.path:
            sys.path.append(folder)
        name = f"_openevolve_evaluator_{abs(hash(str(self.path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, self.path)
        if spec is None or spec.loader is None:
            raise ValueError(f"{self.path} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not callable(getattr(module, "evaluate", None)) and not callable(getattr(module, "evaluate_stage1", None)):
            raise ValueError(f"{self.path} defines neither evaluate(program_path) nor evaluate_stage1(program_path)")
        shim = _ImportlibShim(self)
        for key, value in list(vars(module).items()):  # its own view of importlib, nobody else's
            if value is importlib:
                setattr(module, key, shim)
            elif value is importlib.util:
                setattr(module, key, shim.util)
            elif value is importlib.util.spec_from_file_location:
                setattr(module, key, shim.util.spec_from_file_location)
            elif value is importlib.import_module:
                setattr(module, key, shim.import_module)
        return module

    # -- the program as a path ---------------------------------------------------------------------
    def _is_program(self, location: Any) -> bool:
        return self._path is not None and os.path.realpath(str(location)) == os.path.realpath(self._path)

    def _proxy(self, name: str) -> _Program:
        if self._session is None or self._path is None:
            raise RuntimeError("the candidate can be loaded only while a stage runs")
        return _Program(name, self._path, self._session, self._names)

    def _run(self, function: Callable[[str], Any], label: str, candidate: Session) -> Score:
        folder = tempfile.mkdtemp(prefix="evolve-openevolve-")
        path = os.path.join(folder, "program.py")
        code = self._code
        with open(path, "w") as f:
            f.write(GUARD + code)
        self._session, self._path, self._names = candidate, path, _functions(code)
        try:
            return score_of(function(path), label)
        finally:
            self._session = self._path = None
            shutil.rmtree(folder, ignore_errors=True)

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
