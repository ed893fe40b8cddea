"""The ensemble's choices: weights, bandits learning improvement per dollar, resting failing models."""

from __future__ import annotations

import asyncio
import collections

import pytest

from evolve.errors import ProposerError
from evolve.program import Program, ProgramStatus
from evolve.proposals.llm import Ensemble
from evolve.proposals.llm.base import Prompt, Proposal, Proposer

PROMPT = Prompt([{"role": "user", "content": "x"}],
                Program(id=1, iteration=0, status=ProgramStatus.VALID, code="x = 1\n", code_hash="h", score=1.0))


class Model(Proposer):
    """An in-process proposer with a fixed price per call and a scripted failure pattern."""

    def __init__(self, name, cost=0.0, fail=False, delay=0.0):
        self.name, self.cost, self.fail, self.delay = name, cost, fail, delay
        self.calls = self.active = self.peak = 0

    async def propose(self, prompt):
        self.calls += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise ProposerError(f"{self.name}: down", self.name)
            return Proposal(text="edit", model=self.name, cost=self.cost)
        finally:
            self.active -= 1


def run(ensemble, rounds, improves):
    """Propose `rounds` times, telling the ensemble whether each model's child improved."""
    chosen = []
    for _ in range(rounds):
        proposal = asyncio.run(ensemble.propose(PROMPT))
        ensemble.observe(proposal, improves[proposal.model]())
        chosen.append(proposal.model)
    return chosen


@pytest.mark.parametrize("selection", ["thompson", "ucb"])
def test_bandits_move_to_the_model_that_pays_off_per_dollar(selection):
    import random
    luck = random.Random(0)
    cheap, pricey = Model("cheap", cost=0.0005), Model("pricey", cost=0.02)
    ensemble = Ensemble([cheap, pricey], selection=selection, seed=1)
    # the pricey model improves more often, but not 40x more often: per dollar the cheap one wins
    chosen = run(ensemble, 200, {"cheap": lambda: luck.random() < 0.3, "pricey": lambda: luck.random() < 0.5})
    late = collections.Counter(chosen[100:])
    assert late["cheap"] > 85, late
    assert all(reason.startswith(selection) for reason in [ensemble.choose()[1]])


def test_a_free_model_that_never_helps_loses_to_one_that_does():
    free, useful = Model("free"), Model("useful", cost=0.001)
    ensemble = Ensemble([free, useful], selection="thompson", seed=2)
    chosen = run(ensemble, 150, {"free": lambda: False, "useful": lambda: True})
    assert collections.Counter(chosen[75:])["useful"] > 65


def test_fixed_selection_follows_the_weights():
    a, b = Model("a"), Model("b")
    ensemble = Ensemble([a, b], weights=[3.0, 1.0], selection="fixed", seed=3)
    counts = collections.Counter(run(ensemble, 400, {"a": lambda: True, "b": lambda: True}))
    assert 0.68 < counts["a"] / 400 < 0.82


def test_a_failing_model_is_rested_and_the_others_carry_on():
    now = [0.0]
    down, up = Model("down", fail=True), Model("up")
    ensemble = Ensemble([down, up], selection="fixed", rest_after=2, rest_seconds=10, seed=4, clock=lambda: now[0])
    outcomes = []
    for _ in range(40):
        try:
            outcomes.append(asyncio.run(ensemble.propose(PROMPT)).model)
        except ProposerError as exc:
            outcomes.append(exc.model)
    assert down.calls == 2 and outcomes.count("up") == 38  # rested after two failures in a row
    assert ensemble.stats["down"].rests == 1 and ensemble.stats["down"].rested_until == 10
    now[0] = 11.0  # the rest is over: it is tried again, fails twice, and rests twice as long
    for _ in range(60):
        try:
            asyncio.run(ensemble.propose(PROMPT))
        except ProposerError:
            pass
    assert down.calls == 4 and ensemble.stats["down"].rested_until == 11.0 + 20


def test_when_every_model_rests_the_ensemble_waits_for_the_first_to_wake():
    down = Model("down", fail=True)
    ensemble = Ensemble([down, Model("slow-to-wake", fail=True)], selection="fixed", rest_after=1,
                        rest_seconds=0.2, seed=5)

    async def go():
        for _ in range(2):
            with pytest.raises(ProposerError):
                await ensemble.propose(PROMPT)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ProposerError):
            await ensemble.propose(PROMPT)  # both rested: it sleeps instead of failing at once
        return loop.time() - started

    assert asyncio.run(go()) >= 0.15


def test_each_model_has_its_own_concurrency_limit():
    slow = Model("slow", delay=0.05)
    ensemble = Ensemble([slow], concurrency=[2], selection="fixed")

    async def go():
        await asyncio.gather(*(ensemble.propose(PROMPT) for _ in range(8)))

    asyncio.run(go())
    assert slow.calls == 8 and slow.peak == 2


def test_bad_ensembles_are_refused():
    with pytest.raises(ValueError, match="selection"):
        Ensemble([Model("a")], selection="greedy")
    with pytest.raises(ValueError, match="share a name"):
        Ensemble([Model("a"), Model("a")])
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
