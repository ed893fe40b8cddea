from __future__ import annotations

import asyncio

import pytest

from evolve.proposals.edits import apply_proposal, evolve_blocks
from evolve.errors import ProposerError
from evolve.proposals.llm import OfflineMutator
from evolve.proposals.llm.base import Prompt
from evolve.problems import read_initial_program
from evolve.program import Program, ProgramStatus


def _program(code, pid=1):
    return Program(id=pid, iteration=0, status=ProgramStatus.VALID, code=code, code_hash=str(pid), score=1.0)


def _frozen(code):
    spans = evolve_blocks(code)
    return code[: spans[0][0]] + code[spans[-1][1]:]


def test_every_proposal_applies_and_changes_only_the_blocks(circle_problem):
    code = read_initial_program(circle_problem)
    mutator = OfflineMutator(seed=3, max_edits=3)
    kinds = set()
    for _ in range(200):
        proposal = asyncio.run(mutator.propose(Prompt([], _program(code))))
        assert "<<<<<<< SEARCH" in proposal.text and proposal.model == "offline-mutator"
        child = apply_proposal(code, proposal.text)
        assert child != code and _frozen(child) == _frozen(code)
        kinds.update(k for k in ("constant", "operator") if k in proposal.text)
    assert kinds == {"constant", "operator"}


def test_same_seed_same_proposals(circle_problem):
    code = read_initial_program(circle_problem)
    runs = [[asyncio.run(m.propose(Prompt([], _program(code)))).text for _ in range(20)]
            for m in (OfflineMutator(seed=11), OfflineMutator(seed=11))]
    assert runs[0] == runs[1]
    other = [asyncio.run(OfflineMutator(seed=12).propose(Prompt([], _program(code)))).text for _ in range(20)]
    assert other != runs[0]


def test_crossover_brings_in_lines_from_an_inspiration():
    parent = "# EVOLVE-BLOCK-START\ndef f():\n    a = 1\n    return a\n# EVOLVE-BLOCK-END\n"
    donor = "# EVOLVE-BLOCK-START\ndef f():\n    a = 1\n    a = a * 7 + 5\n    return a\n# EVOLVE-BLOCK-END\n"
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"crossover": 1.0})
    proposal = asyncio.run(mutator.propose(Prompt([], _program(parent), [_program(donor, 2)])))
    assert apply_proposal(parent, proposal.text) == donor
    assert "crossover" in proposal.text


def test_nothing_to_mutate_is_a_proposer_error():
    mutator = OfflineMutator(seed=0, weights={"constant": 1.0})
    with pytest.raises(ProposerError, match="nothing to mutate"):
        asyncio.run(mutator.propose(Prompt([], _program("# EVOLVE-BLOCK-START\npass\n# EVOLVE-BLOCK-END\n"))))
