"""`evolve run`, `check` and `resume` overrides are checked against the config schema before Hydra reads
them: one line that names the closest keys, the available options or the expected type."""

from __future__ import annotations

import pytest

from evolve.cli.overrides import check_overrides, hydra_overrides
from evolve.errors import ConfigError, ProblemNotFound


def _error(*overrides: str, groups: bool = True) -> str:
    with pytest.raises(ConfigError) as caught:
        check_overrides(list(overrides), groups=groups)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_misspelled_key_names_the_closest_valid_ones():
    assert "did you mean budget.iterations?" in _error("budget.iteratons=5")
    assert "did you mean budget.iterations?" in _error("iteratons=5")  # the group left out
    assert "did you mean llm.temperature?" in _error("llm.temprature=0.2")
    assert "did you mean progress?" in _error("progres=off")
    assert _error("nothing_like_it=1").startswith("nothing_like_it=1: no such key; `evolve run --cfg job`")
    assert "+budget.iteratons=5: no such key" in _error("+budget.iteratons=5")  # `+` adds no key to the schema
    assert "did you mean budget.patience?" in _error("~budget.patiense")


def test_an_unknown_choice_lists_the_options():
    with pytest.raises(ProblemNotFound) as raised:
        check_overrides(["problem=circle_pakcing"])
    message = str(raised.value)
    assert "unknown problem 'circle_pakcing' (did you mean circle_packing?)" in message
    assert all(name in message for name in ("bin_packing", "circle_packing", "warehouse_tsp"))
    assert "or a problem folder: problem=./path/to/folder" in message
    message = _error("llm=opnai")
    assert message.startswith("llm=opnai: no such llm config; did you mean llm=openai?")
    assert "offline, ollama, openai, replay, tiers, vllm" in message
    check_overrides(["problem=warehouse_tsp", "llm=vllm", "sandbox=docker", "database=sqlite", "ray=local"])


def test_a_wrong_type_names_the_expected_one():
    assert _error("budget.iterations=many") == "budget.iterations='many': expected an integer (the default is 100)"
    assert _error("database.islands=3.5") == "database.islands=3.5: expected an integer (the default is 4)"
    assert _error("prompt.diff=high").startswith("prompt.diff='high': expected a number")
    assert _error("sandbox.network_isolation=maybe") == \
        "sandbox.network_isolation='maybe': expected true or false (the default is true)"
    assert _error("budget.iterations=null").startswith("budget.iterations=null: expected an integer")
    assert _error("budget.wall_seconds=soon").startswith("budget.wall_seconds='soon': expected a number or null")
    assert _error("problem.limits.memory_mb=big") == "problem.limits.memory_mb='big': expected an integer"
    assert "budget is a group of keys" in _error("budget=5")
    assert "budget.iterations is a value" in _error("budget.iterations.more=5")
    check_overrides(["budget.iterations=5", "budget.wall_seconds=null", "budget.wall_seconds=60", "prompt.diff=1",
                     "sandbox.network_isolation=false", "name=mine", "seed='3'", "llm.models=[1,2]",
                     "budget.target_score=${budget.iterations}"])  # lists and interpolations are Hydra's


def test_a_problems_own_dict_takes_its_keys_and_new_ones_with_a_plus():
    check_overrides(["problem.params.n=27", "+problem.params.extra=1"])
    check_overrides(["problem=warehouse_tsp", "problem.params.layout=multi"])
    assert _error("problem.params.x=1") == ("problem.params.x=1: problem 'circle_packing' has no params key 'x' "
                                            "(it has cpu_seconds, kill_multiple, n, tolerance); add one with "
                                            "+problem.params.x=1")
    assert "problem 'warehouse_tsp' has no params key 'n'" in _error("problem=warehouse_tsp", "problem.params.n=3")
    assert "did you mean problem.params?" in _error("problem.parms.n=3")


def test_multirun_sweeps_are_checked_value_by_value():
    check_overrides(["seed=0,1,2", "seed=range(3)", "budget.iterations=choice(5,10)", "prompt.diff=interval(0,1)"])
    assert _error("seed=0,1,x") == "seed='x': expected an integer (the default is 0)"
    with pytest.raises(ProblemNotFound, match="unknown problem 'tsp'"):
        check_overrides(["problem=circle_packing,tsp"])


def test_hydras_flags_and_keys_are_left_to_hydra():
    assert hydra_overrides(["--cfg", "job", "-m", "seed=1", "--info"]) == ["seed=1"]
    assert hydra_overrides(["--config-dir", "conf", "llm=mine"]) is None  # groups of the user's own
    assert hydra_overrides(["hydra.searchpath=[file://conf]", "llm=mine"]) is None
    check_overrides(["hydra.run.dir=/tmp/x", "hydra/launcher=basic", "hydra.job.chdir=false"])
    assert _error("a=b=c").startswith("cannot read the override 'a=b=c'")


def test_resume_changes_keys_but_picks_no_group():
    check_overrides(["budget.iterations=400", "llm.temperature=0.3"], groups=False)
    assert "`evolve resume` cannot pick another llm group file" in _error("llm=openai", groups=False)
    assert "KEY=VALUE changes of the stored config only" in _error("+budget.foo=1", groups=False)
    assert "did you mean budget.iterations?" in _error("budget.iteratons=400", groups=False)
