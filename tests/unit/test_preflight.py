"""Pre-flight checks (`evolve.engine.preflight`): one line per failure, before anything runs; a stage that does
not return a Score is a one-line evaluator error at run time."""

from __future__ import annotations

import pytest

from evaluators import Evaluator, Stage, evaluate_program
from evolve.cli.scaffold import new_problem
from evolve.engine.preflight import PreflightFailed, check_initial_program, preflight
from evolve.problems import discover, resolve
from sandboxes import ProcessSandbox, SandboxLimits


@pytest.fixture
def folder(tmp_path):
    discover.cache_clear()
    yield new_problem(f"pf_{tmp_path.name[-12:].replace('-', '_')}", tmp_path)
    discover.cache_clear()


def test_a_scaffolded_problem_passes(folder):
    report = preflight(resolve(folder))
    assert report.ok and report.evaluator is not None


@pytest.mark.parametrize("code, expected", [
    ("# EVOLVE-BLOCK-START\ndef solve(x):\n    return x\n", "EVOLVE-BLOCK-START is never closed"),
    ("def solve(x):\n    return x\n# EVOLVE-BLOCK-END\n", "EVOLVE-BLOCK-END without a matching"),
    ("# EVOLVE-BLOCK-START\ndef other(x):\n    return x\n# EVOLVE-BLOCK-END\n", "does not define solve()"),
    ("def solve(x:\n    return x\n", "syntax error at line 1"),
])
def test_initial_program_checks(code, expected):
    failures = check_initial_program(code, "solve")
    assert len(failures) == 1 and expected in failures[0]


def test_entrypoints_bound_in_other_ways_count():
    code = ("import math\nfrom os import path as solve\n"
            "if True:\n    def guarded(x):\n        return x\nalias = guarded\n")
    for name in ("solve", "guarded", "alias", "math"):
        assert check_initial_program(code, name) == []


def test_the_program_is_never_run(folder, tmp_path):
    marker = tmp_path / "ran"
    initial = folder / "initial.py"
    initial.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + initial.read_text())
    assert preflight(resolve(folder)).ok
    assert not marker.exists()


def test_every_failure_is_one_line(folder):
    (folder / "config.yaml").write_text((folder / "config.yaml").read_text().replace("seed: 0", "seed: 0\n  nope: 1"))
    (folder / "initial.py").write_text("# EVOLVE-BLOCK-START\ndef forecast(x):\n    return x\n")
    report = preflight(resolve(folder))
    assert len(report.failures) == 3
    assert report.failures[0].startswith("problem.params for") and "nope" in report.failures[0]
    with pytest.raises(PreflightFailed) as caught:
        report.raise_for_failures()
    assert str(caught.value).count("\n") == 3


def test_an_evaluator_that_does_not_import(folder):
    (folder / "evaluator.py").write_text("import no_such_module_anywhere\n")
    report = preflight(resolve(folder))
    assert len(report.failures) == 1 and report.failures[0].startswith("problem.evaluator=")
    assert "no_such_module_anywhere" in report.failures[0]


class ReturnsADict(Evaluator):
    def stages(self):
        return [Stage("smoke", lambda c: {"value": c.call("solve", 1)})]


def test_a_stage_returning_a_dict_is_a_one_line_evaluator_error():
    result = evaluate_program(ReturnsADict(), ProcessSandbox(), "def solve(x):\n    return x\n",
                              SandboxLimits(call_timeout=5))
    assert result.evaluator_error and not result.valid
    assert result.feedback == "evaluator error: stage smoke returned dict; return Score(value=...)"


def test_repeats_below_one_is_one_line(folder):
    import dataclasses

    from evolve.errors import ConfigError

    report = preflight(dataclasses.replace(resolve(folder), repeats=0))  # `problem.repeats=0` on the command line
    assert len(report.failures) == 1 and report.failures[0].startswith("problem.repeats=0: use 1")
    (folder / "config.yaml").write_text((folder / "config.yaml").read_text() + "repeats: 0\n")
    with pytest.raises(ConfigError, match=r"repeats=0; use 1 \(a deterministic evaluator\) or more"):
        resolve(folder)
