"""Problems by folder (`problem=path`), on EVOLVE_PROBLEM_PATH, with evaluators loaded from their own
file; a problem folder is never in a candidate's view, wherever it lives."""

from __future__ import annotations

import pytest

from evaluators import Evaluator, Score, evaluate_program
from evolve.cli.scaffold import new_problem
from evolve.config import SandboxConfig
from evolve.errors import ConfigError, ProblemNotFound
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import discover, get_problem, load_evaluator, resolve


@pytest.fixture
def fresh_discovery():
    discover.cache_clear()
    yield
    discover.cache_clear()


def test_a_folder_is_a_problem_and_its_evaluator_loads_from_its_file(tmp_path, fresh_discovery):
    folder = new_problem("folder_problem", tmp_path)
    problem = resolve(folder)
    assert problem.name == "folder_problem" and problem.directory == str(folder.resolve())
    assert problem.direction == "minimize"
    assert get_problem("folder_problem").directory == problem.directory  # Hydra's registry sees it too
    evaluator = load_evaluator(problem)
    assert evaluator.entrypoint == "predict"
    assert resolve(str(folder)).name == "folder_problem"  # the same folder again: no clash


def test_not_a_folder_says_so(tmp_path):
    with pytest.raises(ProblemNotFound, match=r"holds no config\.yaml"):
        resolve(tmp_path / "nothing")


def test_the_search_path_adds_folders_and_clashes_name_both(tmp_path, monkeypatch, fresh_discovery):
    new_problem("on_path_a", tmp_path / "shelf")
    new_problem("on_path_b", tmp_path / "shelf")
    single = new_problem("single_one", tmp_path / "other")
    monkeypatch.setenv("EVOLVE_PROBLEM_PATH", f"{tmp_path / 'shelf'}:{single}")
    found = discover()
    assert {"on_path_a", "on_path_b", "single_one", "circle_packing"} <= set(found)
    clash = new_problem("circle_packing", tmp_path / "clash")
    monkeypatch.setenv("EVOLVE_PROBLEM_PATH", str(clash))
    discover.cache_clear()
    with pytest.raises(ConfigError, match="two problems are named 'circle_packing'"):
        discover()


def test_a_bad_direction_is_refused(tmp_path, fresh_discovery):
    folder = new_problem("sideways", tmp_path)
    (folder / "config.yaml").write_text((folder / "config.yaml").read_text().replace("minimize", "sideways"))
    with pytest.raises(ConfigError, match="direction='sideways'"):
        resolve(folder)


@pytest.mark.parametrize("error", ["ValueError", "TypeError", "KeyError"])
def test_an_evaluator_that_raises_in_init_is_named_with_its_exception_and_line(tmp_path, fresh_discovery, error):
    folder = new_problem(f"raising_{error.lower()}", tmp_path)
    source = (folder / "evaluator.py").read_text()
    (folder / "evaluator.py").write_text(source.replace(
        "        self.call_timeout = call_timeout\n",
        f"        self.call_timeout = call_timeout\n        raise {error}('no data today')\n"))
    line = next(n for n, text in enumerate((folder / "evaluator.py").read_text().splitlines(), 1) if "no data" in text)
    with pytest.raises(ConfigError) as caught:
        load_evaluator(resolve(folder))
    assert str(caught.value) == (f"problem 'raising_{error.lower()}': its evaluator Approximation() raised {error}: "
                                 f"{'no data today' if error != 'KeyError' else repr('no data today')} "
                                 f"(evaluator.py:{line}); fix the evaluator or its problem.params")


def test_params_that_do_not_fit_the_constructor_say_so(tmp_path, fresh_discovery):
    problem = resolve(new_problem("unfit", tmp_path))
    problem.params = {**problem.params, "nonsense": 1}
    with pytest.raises(ConfigError, match=r"problem\.params for 'unfit' do not fit Approximation: got an unexpected "
                                          "keyword argument 'nonsense'"):
        load_evaluator(problem)


class Peek(Evaluator):
    """Asks the candidate what it can see of a path."""

    entrypoint = "peek"

    def __init__(self, path: str) -> None:
        self.path = path

    def evaluate(self, candidate):
        return Score(value=0.0, metrics={"seen": candidate.call("peek", self.path, timeout=5.0)})


PEEK = """
import os
def peek(path):
    seen = []
    for probe in (lambda: open(os.path.join(path, "evaluator.py")).read(), lambda: os.listdir(path)):
        try:
            probe()
            seen.append("visible")
        except OSError as exc:
            seen.append(type(exc).__name__)
    return seen
"""


def test_problem_folders_are_invisible_to_candidates_wherever_they_live(tmp_path, fresh_discovery):
    folder = new_problem("hidden_problem", tmp_path / "somewhere" / "else")
    problem = resolve(folder)
    sandbox = make_sandbox(SandboxConfig(), problem)
    from sandboxes import SandboxLimits

    result = evaluate_program(Peek(str(folder)), sandbox, PEEK, SandboxLimits(call_timeout=5, wall_seconds=20))
    assert result.valid, result.feedback
    assert "visible" not in result.metrics["seen"] and len(result.metrics["seen"]) == 2
    # and the control: the same probe sees a folder that is in view (the interpreter's standard library)
    import os

    control = evaluate_program(Peek(os.path.dirname(os.__file__)), sandbox, PEEK, SandboxLimits(call_timeout=5))
    assert control.metrics["seen"][1] == "visible"


@pytest.mark.parametrize(("old", "new", "line"), [
    ("features:", "feature:", "feature: no such key; did you mean features?"),
    ("  cpu_seconds: 30", "  cpu_second: 30", "limits.cpu_second: no such key; did you mean limits.cpu_seconds"),
    ("  cpu_seconds: 30", "  cpu_seconds: thirty", "limits.cpu_seconds: 'thirty' is not an integer"),
    ("bins: 5}", "bins: five}", "features[0] (code_length).bins: 'five' is not an integer"),
    ("bins: 5}", "bin: 5}", "features[0] (code_length).bin: no such key; did you mean bins"),
])
def test_a_config_yaml_mistake_is_one_line_naming_the_file_the_key_and_the_fix(tmp_path, fresh_discovery, old, new,
                                                                               line):
    folder = new_problem("misspelled", tmp_path)
    config = folder / "config.yaml"
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        resolve(folder)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{config}: {line}")


def test_a_path_given_wins_over_a_folder_of_the_same_name_here(tmp_path, monkeypatch, fresh_discovery):
    here = new_problem("twin", tmp_path)  # ./twin holds a problem named twin
    copy = tmp_path / "elsewhere" / "copy"
    copy.parent.mkdir()
    import shutil

    shutil.copytree(here, copy)
    monkeypatch.chdir(tmp_path)
    problem = resolve(str(copy))  # `evolve check problem=/.../copy` (becomes problem=twin for Hydra)
    assert resolve("twin").directory == problem.directory == str(copy.resolve())


def test_an_evaluator_that_raises_in_score_is_named_with_its_file_and_line(tmp_path, fresh_discovery):
    folder = new_problem("raising_score", tmp_path)
    source = (folder / "evaluator.py").read_text()
    (folder / "evaluator.py").write_text(source.replace("        mse = sum(errors) / len(errors)\n",
                                                        "        mse = sum(errors) / 0\n"))
    line = next(n for n, text in enumerate((folder / "evaluator.py").read_text().splitlines(), 1) if "/ 0" in text)
    problem = resolve(folder)
    sandbox = make_sandbox(SandboxConfig(), problem)
    try:
        result = evaluate_program(load_evaluator(problem), sandbox, (folder / "initial.py").read_text(),
                                  problem.limits, problem.stage_limits)
    finally:
        sandbox.close()
    assert result.evaluator_error and not result.valid
    assert result.feedback == ("evaluator error in stage smoke: ZeroDivisionError: float division by zero "
                               f"(evaluator.py:{line})")


def test_the_contract_without_pytest_says_a_config_mistake_in_one_line(tmp_path, fresh_discovery, capsys):
    from evolve.testing.contract import ContractSuite

    folder = new_problem("contract_typo", tmp_path)
    (folder / "config.yaml").write_text((folder / "config.yaml").read_text().replace("features:", "feature:"))
    suite = type("TestTypo", (ContractSuite,), {"problem": folder})
    assert suite.main() == 1
    assert capsys.readouterr().out == (f"evolve: {folder / 'config.yaml'}: feature: no such key; did you mean "
                                       "features? (docs/problem-reference.md lists them)\n")
