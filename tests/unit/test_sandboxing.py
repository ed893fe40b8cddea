"""What a problem's candidates may see: the interpreter, the problem's packages and declared data only."""

from __future__ import annotations

import dataclasses

import pytest

from evolve.config import SandboxConfig
from evolve.errors import ConfigError
from evolve.evaluation.sandboxing import make_sandbox, visible_paths
from sandboxes import package_paths


def test_the_view_holds_the_packages_and_data_a_problem_declares(circle_problem, tmp_path):
    folder, extra = tmp_path / "problem", tmp_path / "extra"
    (folder / "tables").mkdir(parents=True)
    problem = dataclasses.replace(circle_problem, directory=str(folder), packages=["numpy", "scipy"],
                                  data=["tables"])
    paths = visible_paths(SandboxConfig(allow=[str(extra)]), problem)
    assert str((folder / "tables").resolve()) in paths and str(extra) in paths
    assert set(package_paths("scipy")) <= set(paths) and set(package_paths("numpy")) <= set(paths)
    assert str(folder) not in paths  # the evaluator and the rest of the folder stay hidden
    assert not any(p.endswith("site-packages") for p in paths)  # packages one by one, never all of them


def test_a_missing_data_folder_is_one_line(circle_problem):
    problem = dataclasses.replace(circle_problem, data=["no-such-folder"])
    with pytest.raises(ConfigError, match=r"problem 'circle_packing': data folder .*no-such-folder does not exist"):
        visible_paths(SandboxConfig(), problem)


@pytest.mark.parametrize("kind, interpreter, message", [
    ("docker", "guest", r"sandbox.interpreter='guest' is not known; use host .* or image"),
    ("process", "image", r"sandbox.interpreter=image needs sandbox=docker .* not sandbox=process"),
])
def test_a_wrong_interpreter_setting_is_one_line(circle_problem, kind, interpreter, message):
    with pytest.raises(ConfigError, match=message):
        make_sandbox(SandboxConfig(kind=kind, interpreter=interpreter), circle_problem)
