from __future__ import annotations

import pytest

from evolve.config import PromptConfig
from evolve.errors import ConfigError
from evolve.program import Program, ProgramStatus
from evolve.proposals.prompts import PromptBuilder


def _p(pid, score, code, **kw):
    return Program(id=pid, iteration=pid, status=ProgramStatus.VALID, code=code, code_hash=str(pid),
                   score=score, **kw)


def test_prompt_carries_parent_metrics_feedback_inspirations_and_failures():
    parent = _p(1, 2.5, "def solve():\n    return 1\n", metrics={"sum_radii": 2.5}, feedback="radii too small")
    inspiration = _p(2, 2.6, "def solve():\n    return 2\n")
    failure = Program(id=3, iteration=3, status=ProgramStatus.EDIT_FAILED, code="", code_hash="3",
                      error="edit 1: SEARCH text not found in the program")
    prompt = PromptBuilder("Pack circles.", "solve").build(parent, [inspiration], [failure])
    system, user = (m["content"] for m in prompt.messages)
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert "Pack circles." in system and "`solve`" in system and "SEARCH" in system
    assert "return 1" in user and "2.5" in user and "sum_radii" in user and "radii too small" in user
    assert "return 2" in user and "Inspiration 1: " in user and "score 2.6, +0.1 against" in user
    assert "SEARCH text not found" in user
    assert prompt.parent is parent and prompt.inspirations == [inspiration]


def test_the_node_that_evaluated_a_program_stays_out_of_prompts():
    from evolve.program import NODE_METRIC

    node = "a3" * 28
    parent = _p(1, 2.5, "x = 1\n", metrics={"sum_radii": 2.5, NODE_METRIC: node})
    inspiration = _p(2, 2.6, "x = 2\n", metrics={NODE_METRIC: node})
    user = PromptBuilder("d", "solve").build(parent, [inspiration], []).messages[1]["content"]
    assert "sum_radii" in user and node not in user and NODE_METRIC not in user


def test_long_feedback_is_cut():
    parent = _p(1, 1.0, "x = 1\n", feedback="a" * 5000 + "END")
    prompt = PromptBuilder("d", "solve", PromptConfig(max_feedback_chars=200)).build(parent, [], [])
    user = prompt.messages[1]["content"]
    assert "[... cut: 5003 characters in all ...]" in user and "END" in user and "a" * 300 not in user


def test_templates_can_be_overridden(tmp_path):
    (tmp_path / "user.txt").write_text("Improve this ($parent_score):\n$parent_code\n")
    prompt = PromptBuilder("d", "solve", PromptConfig(template_dir=str(tmp_path))).build(_p(1, 3.0, "x = 1\n"), [], [])
    assert prompt.messages[1]["content"] == "Improve this (3):\nx = 1\n"
    assert "Rules" in prompt.messages[0]["content"]  # the built-in system template still applies


def test_bad_templates_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        PromptBuilder("d", "solve", PromptConfig(template_dir=str(tmp_path / "missing")))
    (tmp_path / "user.txt").write_text("$no_such_field")
    builder = PromptBuilder("d", "solve", PromptConfig(template_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="unknown or malformed field"):
        builder.build(_p(1, 1.0, "x = 1\n"), [], [])


def test_each_mode_asks_for_its_own_answer():
    parent, other = _p(1, 2.0, "x = 1\n"), _p(2, 2.5, "x = 2\n")
    builder = PromptBuilder("d", "solve")
    diff = builder.build(parent, [], [], mode="diff").messages[1]["content"]
    full = builder.build(parent, [], [], mode="full").messages[1]["content"]
    cross = builder.build(parent, [], [], mode="crossover", second_parent=other)
    assert "SEARCH/REPLACE blocks" in diff and "Second parent" not in diff
    assert "whole program in one ```python block" in full
    text = cross.messages[1]["content"]
    assert "Combine the strengths" in text and "# Second parent (score 2.5)" in text and "x = 2" in text
    assert cross.mode == "crossover" and cross.second_parent is other
    lonely = builder.build(parent, [], [], mode="crossover")  # no second parent: falls back to a diff
    assert lonely.mode == "diff" and "Combine" not in lonely.messages[1]["content"]


def test_scratchpad_goes_first_when_there_is_one():
    text = PromptBuilder("d", "solve").build(_p(1, 1.0, "x = 1\n"), [], [], scratchpad="- +0.5: more steps")
    assert text.messages[1]["content"].startswith("# Notes from this campaign\n- +0.5: more steps")
    assert "Notes from this campaign" not in PromptBuilder("d", "solve").build(
        _p(1, 1.0, "x = 1\n"), [], []).messages[1]["content"]


def test_the_system_prompt_names_the_entrypoint_of_an_openevolve_problem():
    from pathlib import Path

    from evolve.api import compose
    from evolve.engine.parts import make_prompts

    example = Path(__file__).resolve().parents[1] / "openevolve_example"  # params.entrypoint: run_search
    system = make_prompts(compose(example)).build(_p(1, 1.0, "x = 1\n"), [], []).messages[0]["content"]
    assert "keep defining `run_search`" in system and "None" not in system


def test_without_an_entrypoint_the_system_prompt_names_none():
    system = PromptBuilder("d", None).build(_p(1, 1.0, "x = 1\n"), [], []).messages[0]["content"]
    assert "keep defining" not in system and "None" not in system and "A strict evaluator" in system
