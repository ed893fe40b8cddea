"""The README's promises that code can check: its two commands and its evaluator example."""

from __future__ import annotations

import re
from pathlib import Path

from evaluators import evaluate_program
from sandboxes import ProcessSandbox, SandboxLimits

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    commands = re.findall(r"^bash (\S+)", README.split("## What it is")[0], re.MULTILINE)
    assert commands == ["scripts/campaign.sh", "scripts/test.sh"]
    root = Path(__file__).resolve().parents[2]
    assert all((root / c).is_file() for c in commands)
    assert "bash scripts/test.sh" in (root / ".ci" / "run").read_text()


def test_the_evaluator_example_scores_candidates():
    example = re.search(r"```python\n(from evaluators import.*?)```", README, re.DOTALL).group(1)
    namespace: dict = {}
    exec(example, namespace)
    evaluator = namespace["SquareRoot"]()
    sandbox, limits = ProcessSandbox(), SandboxLimits(call_timeout=5)
    good = evaluate_program(evaluator, sandbox, "def root(x):\n    return x ** 0.5\n", limits)
    rough = evaluate_program(evaluator, sandbox, "def root(x):\n    return x / 2\n", limits)
    wrong = evaluate_program(evaluator, sandbox, "def root(x):\n    return 'two'\n", limits)
    assert good.valid and rough.valid and good.score > rough.score and good.score > -1e-9
    assert not wrong.valid and wrong.stage == "smoke" and "must return a float" in wrong.feedback


def test_dependencies_are_listed_once_and_ray_is_bounded_by_the_version_tested():
    import importlib.metadata
    import platform
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    listed = [Requirement(r) for r in project["dependencies"]]
    listed += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    names = [r.name.lower() for r in listed]
    assert sorted({n for n in names if names.count(n) > 1}) == []
    ray = next(r for r in listed if r.name == "ray")
    assert any(s.operator in ("<", "<=", "==", "~=") for s in ray.specifier), f"{ray}: no upper bound"
    installed = importlib.metadata.version("ray")  # the version this suite runs on
    assert ray.specifier.contains(installed), f"{ray} excludes the tested Ray {installed}"
    python, tested = ".".join(platform.python_version_tuple()[:2]), ".".join(installed.split(".")[:2])
    assert f"Tested with Python {python} and Ray {tested} " in README, "say in the README which versions are tested"
