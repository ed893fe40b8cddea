"""Cheap models first (`selection: tiers`): escalation after proposals without a new best, stepping down after one."""

from __future__ import annotations

import asyncio

import pytest

from evolve.config import LLMConfig, ModelConfig
from evolve.errors import ConfigError, ProposerError
from evolve.program import Program, ProgramStatus
from evolve.proposals.llm import Ensemble, make_proposer
from evolve.proposals.llm.base import Prompt, Proposal, Proposer

PROMPT = Prompt([{"role": "user", "content": "x"}],
                Program(id=1, iteration=0, status=ProgramStatus.VALID, code="x = 1\n", code_hash="h", score=1.0))


class Model(Proposer):
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail = name, fail

    async def propose(self, prompt: Prompt) -> Proposal:
        if self.fail:
            raise ProposerError(f"{self.name}: down", self.name)
        return Proposal(text="edit", model=self.name, cost=0.001)


def _ask(tiers: Ensemble, best: bool = False) -> str:
    """One proposal; its child is a new best when `best`."""
    proposal = asyncio.run(tiers.propose(PROMPT))
    tiers.observe(proposal, best)
    if best:
        tiers.observe_best(proposal)
    return proposal.model


def test_escalates_after_proposals_without_a_new_best_and_steps_down_after_one():
    tiers = Ensemble([Model("small"), Model("medium"), Model("large")], selection="tiers", escalate_after=3)
    assert [_ask(tiers) for _ in range(3)] == ["small"] * 3
    assert [_ask(tiers) for _ in range(3)] == ["medium"] * 3
    assert [_ask(tiers) for _ in range(5)] == ["large"] * 5  # the strongest tier stays
    assert _ask(tiers, best=True) == "large"
    assert _ask(tiers) == "medium"  # one tier down after a new best
    assert _ask(tiers, best=True) == "medium"
    assert [_ask(tiers) for _ in range(4)] == ["small"] * 3 + ["medium"]
    assert tiers.choose()[1].startswith("tiers: tier 2 of 3")


def test_an_improvement_over_the_parent_alone_does_not_hold_a_tier():
    tiers = Ensemble([Model("small"), Model("large")], selection="tiers", escalate_after=2)
    for _ in range(2):
        proposal = asyncio.run(tiers.propose(PROMPT))
        tiers.observe(proposal, True)  # beat its parent, not the campaign's best
    assert _ask(tiers) == "large"


def test_a_resting_tier_is_skipped_for_the_next_stronger_one():
    tiers = Ensemble([Model("small", fail=True), Model("large")], selection="tiers", rest_after=1, escalate_after=50)
    with pytest.raises(ProposerError):
        asyncio.run(tiers.propose(PROMPT))
    name, reason = tiers.choose()
    assert name == "large" and "small is resting" in reason
    assert tiers.tier == 0  # the tier itself is unchanged: small is asked again once it wakes


def test_llm_tiers_builds_a_tier_ensemble_and_refuses_a_bad_escalate_after():
    models = [ModelConfig(model="a", name="cheap"), ModelConfig(model="b", name="strong")]
    tiers = make_proposer(LLMConfig(kind="tiers", models=models, escalate_after=4))
    assert isinstance(tiers, Ensemble) and tiers.selection == "tiers" and tiers.escalate_after == 4
    assert list(tiers.models) == ["cheap", "strong"]
    with pytest.raises(ConfigError, match=r"llm\.escalate_after=0"):
        make_proposer(LLMConfig(kind="tiers", models=models, escalate_after=0))
    with pytest.raises(ConfigError, match=r"llm\.kind=tiers needs at least one entry"):
        make_proposer(LLMConfig(kind="tiers"))
