"""OpenAIModel through the real openai client against the project's fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from evolve.config import LLMConfig, ModelConfig
from evolve.errors import ConfigError, ProposerError
from evolve.program import Program, ProgramStatus
from evolve.proposals.llm import OpenAIModel, make_proposer
from evolve.proposals.llm.base import Prompt
from evolve.testing import FakeOpenAIServer, FakeReply

PARENT = Program(id=1, iteration=0, status=ProgramStatus.VALID, code="x = 1\n", code_hash="h", score=1.0)
PROMPT = Prompt([{"role": "system", "content": "be good"}, {"role": "user", "content": "improve"}], PARENT)


def _model(server, **kw):
    config = ModelConfig(model="m-small", base_url=server.base_url, api_key_env=None,
                         max_retries=kw.pop("max_retries", 0), timeout=kw.pop("timeout", 10.0), **kw)
    return OpenAIModel(config)


def test_request_and_usage_accounting():
    with FakeOpenAIServer(lambda r: FakeReply("edit", prompt_tokens=1000, completion_tokens=500)) as server:
        model = _model(server, temperature=0.3, max_tokens=77, price_input_per_million=2.0,
                       price_output_per_million=10.0)
        proposal = asyncio.run(model.propose(PROMPT))
    assert proposal.text == "edit" and proposal.model == "m-small"
    assert (proposal.prompt_tokens, proposal.completion_tokens) == (1000, 500)
    assert proposal.cost == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    sent = server.requests[0]
    assert sent["model"] == "m-small" and sent["messages"] == PROMPT.messages
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 77


def test_server_errors_and_empty_replies_are_proposer_errors():
    with FakeOpenAIServer(lambda r: FakeReply("overloaded", status=500)) as server:
        with pytest.raises(ProposerError, match="m-small: InternalServerError"):
            asyncio.run(_model(server).propose(PROMPT))
    with FakeOpenAIServer(lambda r: "   ") as server:
        with pytest.raises(ProposerError, match="empty"):
            asyncio.run(_model(server).propose(PROMPT))


def test_client_retries_a_rate_limit_then_succeeds():
    replies = iter([FakeReply("slow down", status=429, headers={"retry-after": "0"}), FakeReply("fine")])
    with FakeOpenAIServer(lambda r: next(replies)) as server:
        proposal = asyncio.run(_model(server, max_retries=2).propose(PROMPT))
    assert proposal.text == "fine" and len(server.requests) == 2


def test_timeouts_and_refused_connections_are_proposer_errors():
    with FakeOpenAIServer(lambda r: FakeReply("late", delay=2.0)) as server:
        with pytest.raises(ProposerError, match="Timeout"):
            asyncio.run(_model(server, timeout=0.3).propose(PROMPT))
        url = server.base_url
    refused = OpenAIModel(ModelConfig(model="m", base_url=url, api_key_env=None, max_retries=0))
    with pytest.raises(ProposerError, match="Connection"):
        asyncio.run(refused.propose(PROMPT))


def test_missing_key_fails_before_anything_starts(monkeypatch):
    monkeypatch.delenv("EVOLVE_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="EVOLVE_TEST_KEY is not set"):
        make_proposer(LLMConfig(kind="openai", api_key_env="EVOLVE_TEST_KEY"))
    monkeypatch.setenv("EVOLVE_TEST_KEY", "sk-test")
    proposer = make_proposer(LLMConfig(kind="openai", model="gpt-x", api_key_env="EVOLVE_TEST_KEY"))
    assert isinstance(proposer.models["gpt-x"], OpenAIModel)


def test_unknown_llm_kind_is_a_config_error():
    with pytest.raises(ConfigError, match=r"llm\.kind='gpt' is not known"):
        make_proposer(LLMConfig(kind="gpt"))
