"""Faults that must be one line: an endpoint that does not answer, two problems with one name, an
evaluator that cannot be built."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from evolve.config import LLMConfig, ModelConfig
from evolve.errors import ConfigError
from evolve.problems import _add, get_problem, load_evaluator
from evolve.proposals.llm.probe import probe_endpoints
from evolve.testing import FakeOpenAIServer


def test_an_answering_endpoint_passes_and_a_model_it_does_not_list_is_a_warning(caplog):
    with FakeOpenAIServer(model="served") as server:
        probe_endpoints(LLMConfig(kind="openai", model="served", base_url=server.base_url, api_key_env=None))
        with caplog.at_level(logging.WARNING, logger="evolve.proposals.llm.probe"):
            probe_endpoints(LLMConfig(kind="openai", model="typo", base_url=server.base_url, api_key_env=None))
        assert server.requests == []  # a model list costs no completion
    assert f"llm.base_url={server.base_url} lists no model 'typo' (it has served)" in caplog.text


def test_a_dead_endpoint_is_one_line_naming_the_key_and_the_model():
    with FakeOpenAIServer() as dead:
        pass  # closed on exit: connections to it are refused
    with FakeOpenAIServer() as live:
        config = LLMConfig(kind="ensemble", models=[ModelConfig(model="a", name="cheap", base_url=live.base_url),
                                                    ModelConfig(model="b", name="strong", base_url=dead.base_url)])
        with pytest.raises(ConfigError) as caught:
            probe_endpoints(config)
    assert str(caught.value) == (f"llm.models[1].base_url={dead.base_url} (model strong) does not answer (connection "
                                 "refused); start the server or fix the URL")
    probe_endpoints(dataclasses.replace(config, probe_timeout=None))  # no probe at all
    probe_endpoints(LLMConfig(kind="offline"))  # nothing to probe


def test_two_problems_with_one_name_are_an_error_naming_both_folders(tmp_path):
    builtin = get_problem("circle_packing")
    found = {builtin.name: builtin}
    _add(found, builtin)  # the same folder twice (a plugin pointing at it) is no conflict
    copy = dataclasses.replace(builtin, directory=str(tmp_path / "circle_packing_copy"))
    with pytest.raises(ConfigError, match=f"two problems are named 'circle_packing': {builtin.directory} and "
                                          f"{tmp_path / 'circle_packing_copy'}; rename one"):
        _add(found, copy)
    assert found["circle_packing"] is builtin


def test_any_exception_from_an_evaluators_constructor_is_one_line_with_its_place():
    problem = dataclasses.replace(get_problem("circle_packing"), evaluator="tests.e2e.faulty:Exploding")
    with pytest.raises(ConfigError) as caught:
        load_evaluator(problem)
    message = str(caught.value)
    assert message.startswith("problem 'circle_packing': its evaluator Exploding() raised RuntimeError: no licence "
                              "server at licence.example:27000 (faulty.py:")
    assert "\n" not in message


@pytest.mark.parametrize("url, says", [("localhost:8000/v1", "does not answer (unknown url type: localhost)"),
                                       ("not-a-url", "is not a URL")])
def test_a_malformed_endpoint_url_is_one_line(url, says):
    with pytest.raises(ConfigError) as caught:
        probe_endpoints(LLMConfig(kind="openai", model="m", base_url=url, api_key_env=None))
    message = str(caught.value)
    assert message.startswith(f"llm.base_url={url} {says}") and "\n" not in message
