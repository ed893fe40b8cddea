"""Pre-flight: what can be checked about a problem before Ray starts, in one line per failure.

Used by `evolve check` and by every campaign before its set-up (`Campaign.arun`, `evolve.run`):

    the initial program    exists, parses, has balanced EVOLVE-BLOCK markers, defines the evaluator's
                           entrypoint (read with `ast`; the program is never run here)
    the evaluator          imports, and its constructor accepts the problem's params
    the direction          `maximize` or `minimize`
    repeats                1 (a deterministic evaluator) or more (a problem noisy by nature)

Whether each stage returns a `Score` can only be seen by running it: the cascade checks that at run time
and reports a stage that returns something else as a one-line evaluator error. So is determinism:
`nondeterminism` says in one line where two scorings of the same program differ (`evolve check` and
`evolve.testing.ContractSuite` score a program twice).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evaluators.parsing import parse
from evolve.config import ProblemConfig
from evolve.errors import ConfigError, EditError, EvolveError

if TYPE_CHECKING:
    from evaluators import EvaluationResult

__all__ = ["Preflight", "PreflightFailed", "check_initial_program", "defined_names", "nondeterminism", "preflight"]


class PreflightFailed(ConfigError):
    """One or more pre-flight checks failed; the message has one line per failure."""


@dataclass
class Preflight:
    """The outcome: `failures` (one line each) and the evaluator built on the way (None if it was not)."""

    problem: ProblemConfig
    failures: list[str] = field(default_factory=list)
    evaluator: object | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if len(self.failures) == 1:  # one failure, one line
            only = self.failures[0]
            named = only.startswith(f"problem {self.problem.name!r}")
            raise PreflightFailed(only if named else f"problem {self.problem.name!r}: {only}")
        if self.failures:
            raise PreflightFailed(f"problem {self.problem.name!r} failed {len(self.failures)} pre-flight checks:\n  "
                                  + "\n  ".join(self.failures))


def defined_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (functions, classes, assignments, imports)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):  # guarded definitions count too
            body = [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]
            names.update(defined_names(ast.Module(body=body, type_ignores=[])))
    return names


def check_initial_program(code: str, entrypoint: str | None, where: str = "initial program") -> list[str]:
    """Why `code` cannot start a campaign (one line each); empty when it can."""
    from evolve.proposals.edits import evolve_blocks

    failures = []
    try:
        evolve_blocks(code)
    except EditError as exc:
        failures.append(f"{where}: unbalanced EVOLVE-BLOCK markers: {exc}")
    try:
        tree = parse(code, where)
    except SyntaxError as exc:
        failures.append(f"{where}: syntax error at line {exc.lineno}: {exc.msg}")
        return failures
    if entrypoint and entrypoint not in defined_names(tree):
        failures.append(f"{where}: does not define {entrypoint}(), the evaluator's entrypoint")
    return failures


def preflight(problem: ProblemConfig, *, build: bool = True) -> Preflight:
    """Check `problem` without running any candidate code; `build` also constructs the evaluator."""
    from evolve.problems import build_evaluator, evaluator_class, read_initial_program

    report = Preflight(problem)
    if problem.direction not in ("maximize", "minimize"):
        report.failures.append(f"problem.direction={problem.direction!r}: use maximize or minimize")
    if problem.repeats < 1:
        report.failures.append(f"problem.repeats={problem.repeats}: use 1 (a deterministic evaluator) or more "
                               "(scorings of each would-be best, for a problem noisy by nature)")
    cls = None
    try:
        cls = evaluator_class(problem)
    except EvolveError as exc:
        report.failures.append(str(exc))  # it names problem.evaluator and the fix
    if cls is not None and build:
        try:
            report.evaluator = build_evaluator(problem)
        except EvolveError as exc:
            report.failures.append(str(exc))  # it names the problem, the cause and file:line
    try:
        code = read_initial_program(problem)
    except EvolveError as exc:
        report.failures.append(str(exc))
    else:
        entrypoint = getattr(report.evaluator or cls, "entrypoint", None)
        report.failures += check_initial_program(code, entrypoint, f"initial program {problem.initial}")
    return report


def nondeterminism(problem: ProblemConfig, first: EvaluationResult, second: EvaluationResult,
                   timing: Iterable[str] = (), what: str = "the initial program") -> str | None:
    """The one-line failure when two scorings of `what` differ (beyond the `timing` metrics), or None;
    None too for a problem that declares `repeats` > 1 (noisy by nature)."""
    from evaluators import first_difference

    difference = first_difference(first, second, timing, problem.direction)
    if difference is None or problem.repeats > 1:
        return None
    return (f"problem {problem.name!r}: the evaluator is not deterministic: {what} scored twice gave {difference}; "
            "draw every random choice from Evaluator.seed_for(...) and name timing metrics in "
            "Evaluator.timing_metrics (or declare `repeats: k` in config.yaml for a problem noisy by nature)")
