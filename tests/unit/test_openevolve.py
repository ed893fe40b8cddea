"""OpenEvolve-style evaluators through `evaluators.openevolve`: the candidate still runs in the sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evaluators import evaluate_program
from evaluators.openevolve import EvaluationResult, OpenEvolveEvaluator, UnsupportedEvaluator, score_of
from evolve.config import SandboxConfig
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import build_evaluator, read_initial_program, resolve

EXAMPLE = Path(__file__).resolve().parents[1] / "openevolve_example"


@pytest.fixture(scope="module")
def example():
    problem = resolve(EXAMPLE)
    return problem, build_evaluator(problem), make_sandbox(SandboxConfig(), problem), read_initial_program(problem)


def test_the_example_scores_through_the_sandbox(example):
    problem, evaluator, sandbox, initial = example
    assert isinstance(evaluator, OpenEvolveEvaluator) and [s.name for s in evaluator.stages()] == ["stage1", "stage2"]
    result = evaluate_program(evaluator, sandbox, initial, problem.limits)
    assert result.valid and result.stage == "stage2", result.feedback
    assert result.score == pytest.approx(result.metrics["combined_score"])
    assert 0 < result.score <= 1 and "stage1.value_score" in result.metrics
    assert "best_values:" in result.feedback  # artifacts reach the feedback


def test_the_candidate_runs_in_the_sandbox_not_in_the_evaluator(example, tmp_path):
    problem, evaluator, sandbox, initial = example
    marker = tmp_path / "escaped"
    spy = initial.replace("def run_search():", f"def run_search():\n    open({str(marker)!r}, 'w').write('x')")
    result = evaluate_program(evaluator, sandbox, spy, problem.limits)
    assert not marker.exists()  # the host's tmp_path is not in the sandbox's view
    assert not result.valid and "run_search failed" in result.feedback


def test_a_raising_candidate_is_invalid_with_the_reason(example):
    problem, evaluator, sandbox, initial = example
    broken = initial.replace("x, y, value = search_algorithm()", "raise RuntimeError('lost my way')")
    result = evaluate_program(evaluator, sandbox, broken, problem.limits)
    assert not result.valid and not result.evaluator_error
    assert result.stage == "stage1" and "lost my way" in result.feedback


def test_running_the_program_file_outside_the_sandbox_fails_loudly(tmp_path):
    """A loader the adapter does not intercept runs the guard line: uncaught, an evaluator error; caught,
    the program is still invalid with the guard's reason, whatever the evaluator returns."""
    (tmp_path / "evaluator.py").write_text(textwrap.dedent("""
        import importlib.machinery, types
        def evaluate(program_path):
            importlib.machinery.SourceFileLoader("p", program_path).exec_module(types.ModuleType("p"))
            return {"combined_score": 1.0}
    """))
    (tmp_path / "catching.py").write_text(textwrap.dedent("""
        import importlib.machinery, types
        def evaluate(program_path):
            try:
                importlib.machinery.SourceFileLoader("p", program_path).exec_module(types.ModuleType("p"))
            except Exception:
                return {"combined_score": 0.0}
            return {"combined_score": 1.0}
    """))
    sandbox, limits = make_sandbox(SandboxConfig()), resolve(EXAMPLE).limits
    loud = evaluate_program(OpenEvolveEvaluator(str(tmp_path / "evaluator.py")), sandbox, "x = 1\n", limits)
    assert loud.evaluator_error and "ran the program outside the sandbox" in loud.feedback
    future = '"""Doc."""\nfrom __future__ import annotations\nx = 1\n'  # the guard goes after what must lead
    caught = evaluate_program(OpenEvolveEvaluator(str(tmp_path / "catching.py")), sandbox, future, limits)
    assert not caught.valid and not caught.evaluator_error
    assert caught.feedback.startswith("evaluate: the evaluator ran the program outside the sandbox")


@pytest.mark.parametrize(("body", "style"), [
    ("import subprocess, sys\ndef evaluate(p):\n    subprocess.run([sys.executable, p])\n", "subprocess.run"),
    ("import os\ndef evaluate(p):\n    os.system('python ' + p)\n", "os.system"),
    ("import runpy\ndef evaluate(p):\n    runpy.run_path(p)\n", "runpy.run_path"),
    ("def evaluate(p):\n    exec(open(p).read())\n", "exec"),
    ("from concurrent.futures import ProcessPoolExecutor as P\ndef evaluate(p):\n    P(2)\n",
     "concurrent.futures.ProcessPoolExecutor"),
    ("import signal\ndef evaluate(p):\n    signal.alarm(5)\n", "signal.alarm"),
    ("from helper import score\ndef evaluate(p):\n    return score(p)\n", "subprocess.Popen"),  # its own helper
])
def test_unsupported_styles_are_refused_in_one_line(tmp_path, body, style):
    (tmp_path / "helper.py").write_text("import subprocess\ndef score(p):\n    subprocess.Popen(['python', p])\n")
    (tmp_path / "evaluator.py").write_text(body)
    with pytest.raises(UnsupportedEvaluator) as refused:
        OpenEvolveEvaluator(str(tmp_path / "evaluator.py"))
    line = str(refused.value)
    assert "\n" not in line and (f"({style})" in line or f"with {style}" in line)
    assert "spec_from_file_location" in line or "limits.call_timeout" in line  # the fix


def test_scores_from_metrics(caplog):
    assert score_of({"combined_score": 0.7, "a": 0.1}, "s").value == 0.7
    assert score_of({"combined_score": 0.7, "a": 0.1}, "s", metric="a").value == 0.7  # combined_score first
    assert score_of({"composite": 0.4, "errors": 30}, "s", metric="composite").value == 0.4
    named = score_of({"errors": 30}, "s", metric="composite")
    assert not named.valid and "no numeric 'composite'" in named.feedback
    with caplog.at_level("WARNING", logger="evolve.adapters"):
        mean = score_of({"a": 1.0, "b": 3, "flag": True, "note": "x", "eval_time": 7.0}, "s", source="ev.py",
                        timing=("eval_time",))
    assert mean.value == 2.0  # the mean of the numbers but the timing
    assert [r.getMessage() for r in caplog.records] == [
        ("ev.py returns no combined_score: its score is the mean of a, b (as OpenEvolve does; eval_time left out: "
         "timings); name the metric to maximise with `metric:` in config.yaml")]
    assert score_of(EvaluationResult(metrics={"a": 0.5}, artifacts={"log": "hi"}), "s").feedback.endswith("log: hi")
    nested = score_of({"metrics": {"combined_score": 0.0, "accuracy": 0.0}, "artifacts": {"status": "BAD"}}, "s")
    assert nested.valid and nested.value == 0.0 and nested.feedback.endswith("status: BAD")  # k_module's shape
    beside = score_of({"combined_score": 0.5, "artifacts": {"hint": "more"}}, "s")
    assert beside.value == 0.5 and "artifacts" not in beside.metrics and beside.feedback.endswith("hint: more")
    invalid = score_of({"combined_score": 0.0, "error": "boom"}, "stage1")
    assert not invalid.valid and invalid.feedback == "stage1: boom"
    assert not score_of({"note": "x"}, "s").valid
    with pytest.raises(TypeError, match="returned list"):
        score_of([1, 2], "evaluate")


def test_tuples_come_back_as_tuples(tmp_path):
    """`centers, radii, total = program.run_packing()` and `isinstance(x, tuple)` checks work as in OpenEvolve."""
    (tmp_path / "evaluator.py").write_text(textwrap.dedent("""
        import importlib.util
        def evaluate(program_path):
            spec = importlib.util.spec_from_file_location("program", program_path)
            program = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(program)
            pair, nested, listed = program.shapes()
            ok = (isinstance(pair, tuple) and pair == (1, 2) and nested == {"p": ((0.5, 1.5), [3])}
                  and isinstance(nested["p"][0], tuple) and listed == [4, 5] and isinstance(listed, list))
            return {"combined_score": 1.0 if ok else 0.0, "error": "" if ok else f"{pair!r} {nested!r} {listed!r}"}
    """))
    evaluator = OpenEvolveEvaluator(str(tmp_path / "evaluator.py"))
    code = "def shapes():\n    return (1, 2), {'p': ((0.5, 1.5), [3])}, [4, 5]\n"
    result = evaluate_program(evaluator, make_sandbox(SandboxConfig()), code, resolve(EXAMPLE).limits)
    assert result.valid and result.score == 1.0, result.feedback
