"""Resting failing models: capped rests, one warning per outage, and a bounded wait when all fail."""

from __future__ import annotations

import asyncio
import logging

import pytest

from evolve.errors import ModelsResting, ProposerError
from evolve.proposals.llm import Ensemble
from tests.unit.test_ensemble import PROMPT, Model


def test_rests_double_up_to_the_cap_each_is_logged_and_the_outage_is_named_once(caplog):
    now = [0.0]
    down, up = Model("down", fail=True), Model("up")
    ensemble = Ensemble([down, up], selection="fixed", rest_after=1, rest_seconds=10, max_rest_seconds=35,
                        seed=1, clock=lambda: now[0])
    rests = []
    with caplog.at_level(logging.INFO, logger="evolve.proposals.llm.ensemble"):
        for _ in range(5):
            while ensemble.stats["down"].rested_until <= now[0]:  # until "down" is drawn and fails again
                try:
                    asyncio.run(ensemble.propose(PROMPT))
                except ProposerError:
                    pass
            rests.append(ensemble.stats["down"].rested_until - now[0])
            now[0] = ensemble.stats["down"].rested_until
    assert rests == [10, 20, 35, 35, 35]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["model down is failing: down"]  # the terminal hears of it once; campaign.log of each rest
    rested = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(rested) == 5
    assert rested[2] == "model down is resting 35 s after 1 failure in a row (last error: down: down)"
    assert ensemble.stats["down"].last_error == "down: down"


def test_when_every_model_keeps_failing_the_wait_is_bounded():
    a, b = Model("a", fail=True), Model("b", fail=True)
    ensemble = Ensemble([a, b], selection="fixed", rest_after=1, rest_seconds=0.05, max_rest_seconds=0.1,
                        max_wait_seconds=0.5, seed=2)

    async def go():
        while True:
            try:
                await ensemble.propose(PROMPT)
            except ProposerError:
                continue

    with pytest.raises(ModelsResting, match=r"every model has been resting or failing for 0.5 s "
                                            r"\(llm.max_wait_seconds\); last errors: a: down; b: down; "
                                            r"fix the endpoint"):
        asyncio.run(asyncio.wait_for(go(), timeout=120))
    assert a.calls + b.calls >= 4  # each woke and was tried again before the campaign gave up


def test_one_answer_resets_the_wait():
    flaky = Model("flaky", fail=True)
    ensemble = Ensemble([flaky], selection="fixed", rest_after=1, rest_seconds=0.05, max_rest_seconds=0.05,
                        max_wait_seconds=0.3, seed=3)

    async def go():
        answered = 0
        for _ in range(40):  # fails, rests, then answers: the wait starts again after every answer
            flaky.fail = not flaky.fail
            try:
                await ensemble.propose(PROMPT)
                answered += 1
            except ProposerError:
                pass
        return answered

    assert asyncio.run(asyncio.wait_for(go(), timeout=120)) == 20
