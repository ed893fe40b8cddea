"""OpenEvolve and ShinkaEvolve evaluators in each example's style (tests/evaluator_styles), scored unchanged
through the adapters with the candidate in the sandbox; the unsupported style refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evaluators import evaluate_program
from evaluators.shinka import ShinkaEvaluator
from evolve.config import SandboxConfig
from evolve.errors import ConfigError
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import build_evaluator, read_initial_program, resolve

STYLES = Path(__file__).resolve().parents[1] / "evaluator_styles"


def score(name: str, code: str | None = None):
    problem = resolve(STYLES / name)
    evaluator = build_evaluator(problem)
    program = read_initial_program(problem) if code is None else code
    return evaluate_program(evaluator, make_sandbox(SandboxConfig(), problem), program, problem.limits)


@pytest.mark.parametrize(("name", "value"), [
    ("minimise_threads", None), ("k_module", 0.25), ("artifacts_catching", 0.48), ("rect_import", 0.75),
    ("shinka_circles", None),
])
def test_each_style_scores_the_initial_program(name, value):
    result = score(name)
    assert result.valid and not result.evaluator_error, result.feedback
    assert result.score == pytest.approx(value if value is not None else result.metrics["combined_score"])


def test_numpy_arrays_come_back_as_arrays_and_a_caught_candidate_error_is_the_evaluators_call():
    """circle_packing_with_artifacts' style: `centers.shape` works; its `except Exception` makes a raising
    candidate a zero with the error in the artifacts, as in OpenEvolve."""
    problem = resolve(STYLES / "artifacts_catching")
    broken = read_initial_program(problem).replace("radii = np.full(6, 0.08)", "raise ValueError('no radii')")
    result = score("artifacts_catching", broken)
    assert result.valid and result.score == 0.0 and "no radii" in result.feedback


def test_keyword_arguments_scipy_and_the_named_metric():
    """signal_processing's style: kwargs reach the candidate, scipy runs on both sides (`packages:`), and the
    score is `metric: composite_score`, not the mean that would reward the error counts."""
    result = score("signal_kwargs")
    assert result.valid, result.feedback
    assert result.score == result.metrics["composite_score"] and 0.5 < result.score < 1
    assert result.metrics["false_reversals"] > result.score  # the mean would have been dominated by this count


def test_import_and_a_helpers_importlib_reach_the_sandbox(tmp_path):
    """circle_packing_rect's style: `__import__(stem)` and a helper module's own `import importlib.util`
    both give the proxy; a program that escapes nothing still gets its score."""
    problem = resolve(STYLES / "rect_import")
    result = score("rect_import", read_initial_program(problem).replace("0.6, 0.6, 0.15", "0.6, 0.6, 0.2"))
    assert result.valid and result.score == pytest.approx(0.8)
    overlapping = score("rect_import", read_initial_program(problem).replace("0.6, 0.2, 0.2", "0.3, 0.2, 0.2"))
    assert not overlapping.valid and "overlap" in overlapping.feedback


def test_the_subprocess_style_is_refused_in_one_line():
    with pytest.raises(ConfigError) as refused:
        build_evaluator(resolve(STYLES / "subprocess_style"))
    assert str(refused.value) == (
        "problem 'style_subprocess': evaluator.py:9 runs the program in a process of its own (subprocess.run): "
        "evolve runs candidates only in its sandbox; load the program with "
        "importlib.util.spec_from_file_location(...) and call its functions instead (they run in the sandbox, "
        "under the problem's limits)")


def test_a_metric_on_a_native_evaluator_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_text("name: native_metric\nevaluator: evaluator:Mine\nmetric: accuracy\n")
    with pytest.raises(ConfigError, match="metric='accuracy' names the score of an OpenEvolve or ShinkaEvolve"):
        resolve(tmp_path)


def test_shinka_correctness_and_public_metrics():
    problem = resolve(STYLES / "shinka_circles")
    evaluator = build_evaluator(problem)
    assert isinstance(evaluator, ShinkaEvaluator) and evaluator.entrypoint == "run_packing"
    good = score("shinka_circles")
    assert good.metrics["num_circles"] == 5 and "reported_sum_of_radii" not in good.metrics  # private stays out
    assert good.metrics["num_valid_runs"] == 1
    overlapping = read_initial_program(problem).replace("[0.5, 0.5]]", "[0.3, 0.3]]").replace(
        "    return centers, radii_for(centers)", "    return centers, radii_for(centers) + 0.05")
    bad = score("shinka_circles", overlapping)
    assert not bad.valid and not bad.evaluator_error and "Validation failed:" in bad.feedback
    raising = score("shinka_circles", read_initial_program(problem).replace(
        "    centers, radii = construct_packing()", "    raise RuntimeError('lost')"))
    assert not raising.valid and "lost" in raising.feedback


def test_the_candidate_of_a_shinka_evaluator_runs_in_the_sandbox(tmp_path):
    marker = tmp_path / "escaped"
    problem = resolve(STYLES / "shinka_circles")
    spy = read_initial_program(problem).replace("def run_packing():",
                                                f"def run_packing():\n    open({str(marker)!r}, 'w').write('x')")
    result = score("shinka_circles", spy)
    assert not marker.exists() and not result.valid


def test_an_example_folder_of_either_project_is_recognised_as_it_ships(tmp_path):
    """No evolve config.yaml needed: a ShinkaEvolve folder (evaluate.py, initial.py) and an OpenEvolve one
    (evaluator.py, initial_program.py, OpenEvolve's own config.yaml) resolve to problems through the adapters."""
    shinka = tmp_path / "circles"
    shutil.copytree(STYLES / "shinka_circles", shinka)
    (shinka / "config.yaml").unlink()
    problem = resolve(shinka)
    assert (problem.name, problem.evaluator, problem.initial) == ("shinka_circles", "shinka:evaluate.py", "initial.py")
    openevolve = tmp_path / "smoothing"
    shutil.copytree(STYLES / "signal_kwargs", openevolve)
    (openevolve / "config.yaml").write_text(
        "max_iterations: 100\nllm: {primary_model: some-model}\nprompt: {system_message: Smooth the signal.}\n"
        "evaluator: {timeout: 60, cascade_thresholds: [0.5]}\n")
    problem = resolve(openevolve)
    assert (problem.name, problem.evaluator, problem.initial) == ("openevolve_smoothing", "openevolve:evaluator.py",
                                                                  "initial_program.py")
    assert problem.params == {"cascade_thresholds": [0.5]} and problem.description == "Smooth the signal."
    assert problem.packages == ["numpy", "scipy"]  # what the initial program imports
    result = evaluate_program(build_evaluator(problem), make_sandbox(SandboxConfig(), problem),
                              read_initial_program(problem), problem.limits)
    assert result.valid and result.score > 0, result.feedback
