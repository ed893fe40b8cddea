"""Model faults speak early: a hung, failing or disconnecting endpoint (the fake server, on purpose) is named
once per outage with its endpoint and cause, its recovery in one line, and a campaign whose every model keeps
failing ends with `ModelsResting`. Counted in requests, never in seconds."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from evolve.config import ModelConfig
from evolve.errors import ModelsResting, ProposerError
from evolve.proposals.llm import Ensemble, OpenAIModel
from evolve.testing import FakeOpenAIServer
from tests.unit.test_ensemble import PROMPT

LOGGER = "evolve.proposals.llm.ensemble"
CAUSES = {"hang": r"APITimeoutError: no answer within 0\.5 s \(llm\.timeout\)",
          500: r"InternalServerError: Error code: 500",
          "drop": r"APIConnectionError: Connection error \(RemoteProtocolError: Server disconnected"}


def _ensemble(server, timeout=10.0, **kw):
    model = OpenAIModel(ModelConfig(model="m", base_url=server.base_url, max_retries=kw.pop("max_retries", 1),
                                    timeout=timeout))
    kw = {"selection": "fixed", "rest_after": 2, "rest_seconds": 0.05, "max_rest_seconds": 0.1,
          "max_wait_seconds": 600, "warn_after_seconds": 600, **kw}
    return Ensemble([model], **kw)


def _said(caplog, level=logging.WARNING):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


@pytest.mark.parametrize("fault", ["hang", 500, "drop"])
def test_the_first_failure_names_the_model_its_endpoint_and_the_cause_once(fault, caplog):
    with FakeOpenAIServer() as server:
        server.fault = fault
        ensemble = _ensemble(server, timeout=0.5 if fault == "hang" else 10.0)

        async def go():
            for _ in range(5):
                with pytest.raises(ProposerError, match=CAUSES[fault]):
                    await ensemble.propose(PROMPT)
            server.fault = None
            try:
                return await ensemble.propose(PROMPT)
            finally:
                await ensemble.close()

        with caplog.at_level(logging.INFO, logger=LOGGER):
            proposal = asyncio.run(asyncio.wait_for(go(), timeout=120))
    assert proposal.text == "no edit"
    warnings = _said(caplog)
    assert len(warnings) == 1, warnings  # once per outage, whatever the failures and rests that follow
    assert re.match(re.escape(f"model m at {server.base_url} is failing: ") + CAUSES[fault], warnings[0])
    assert "the campaign stops in" in warnings[0]  # it is the only model: the clock is said at once
    back = [m for m in _said(caplog, logging.INFO) if "answers again" in m]
    assert back and back[0].startswith(f"model m at {server.base_url} answers again") and \
        back[0].endswith("(5 failed requests)")


def test_a_hung_request_is_named_while_it_still_waits(caplog):
    with FakeOpenAIServer() as server:
        server.fault = "hang"
        ensemble = _ensemble(server, timeout=600, warn_after_seconds=0.2)

        async def go():
            named = asyncio.Event()
            handler = logging.Handler(logging.WARNING)
            handler.emit = lambda record: named.set()  # the watchdog logs on the loop's thread
            logging.getLogger(LOGGER).addHandler(handler)
            try:
                waiting = asyncio.create_task(ensemble.propose(PROMPT))
                await named.wait()
                while not server.requests and not waiting.done():  # noqa: ASYNC110 (the server is another thread)
                    await asyncio.sleep(0.05)
                # on a busy machine the line may come first; named before any request failed: the watchdog
                assert not waiting.done(), waiting.exception() or waiting.result()
                waiting.cancel()
            finally:
                logging.getLogger(LOGGER).removeHandler(handler)
                await ensemble.close()

        with caplog.at_level(logging.INFO, logger=LOGGER):
            asyncio.run(asyncio.wait_for(go(), timeout=120))
    assert len(server.requests) == 1 and ensemble.stats["m"].failures == 0
    assert _said(caplog) == [(f"model m at {server.base_url} has not answered in 0.2 s (hung or overloaded?); "
                              "the request fails after 600 s (llm.timeout)")]


def test_a_slow_model_is_named_once_then_trusted_to_its_pace(caplog):
    with FakeOpenAIServer(latency=1.0) as server:
        ensemble = _ensemble(server, timeout=600, warn_after_seconds=0.1)

        async def go():
            for _ in range(3):
                await ensemble.propose(PROMPT)
            await ensemble.close()

        with caplog.at_level(logging.INFO, logger=LOGGER):
            asyncio.run(asyncio.wait_for(go(), timeout=120))
    # the first answer took longer than warn_after; the next are named only when 1.5 times slower than it
    assert len(_said(caplog)) == 1
    assert any("answered after" in m and "slow, not hung" in m for m in _said(caplog, logging.INFO))


@pytest.mark.parametrize("fault", ["hang", 500, "drop"])
def test_when_every_model_keeps_failing_the_ensemble_gives_up(fault, caplog):
    with FakeOpenAIServer() as server:
        server.fault = fault
        ensemble = _ensemble(server, timeout=0.5 if fault == "hang" else 10.0, max_wait_seconds=1.0)

        async def go():
            try:
                while True:
                    try:
                        await ensemble.propose(PROMPT)
                    except ModelsResting:
                        raise
                    except ProposerError:
                        continue
            finally:
                await ensemble.close()

        with pytest.raises(ModelsResting, match=r"every model has been resting or failing for 1 s "
                                                r"\(llm.max_wait_seconds\); last errors: m: " + CAUSES[fault]):
            asyncio.run(asyncio.wait_for(go(), timeout=120))
    assert ensemble.stats["m"].failures >= 1

