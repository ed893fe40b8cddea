"""The proposer contract, as a pytest class a proposer's author subclasses.

    # test_my_proposer.py
    from evolve.testing import ProposerContract

    class TestMyProposer(ProposerContract):
        deterministic = True                     # no network: the same seed answers the same

        def make_proposer(self, seed):
            return MyProposer(seed=seed)

What it checks, on real prompts that evolve's `PromptBuilder` builds from a problem's initial program
(`problem`, circle_packing by default), in `diff` and `full` mode:

    name            the proposer is a `Proposer` and its `name` is set
    answers         each answer is a `Proposal` whose text applies to the parent (`apply_proposal`), or
                    a `ProposerError`; nothing else is raised, and at least one prompt is answered
    propose_built   `propose_built(build)` builds its prompt (a budget of None or a positive count, and an
                    `edit_format` of auto, diff, rewrite or structured)
                    and answers it as `propose` would
    concurrency     `concurrency` proposals awaited at once all end as above
    hooks           `observe(proposal, improved)` and `close()` work, `close()` on an unused one too
    determinism     (with `deterministic`) two proposers of one seed answer the same prompts the same

Each check runs on a fresh proposer inside its own event loop, closed at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from evolve.config import Config
from evolve.errors import EditError, ProposerError
from evolve.program import Program, ProgramStatus
from evolve.proposals.edits import apply_proposal, normalized_hash
from evolve.proposals.llm.base import Prompt, Proposal, Proposer
from evolve.proposals.prompts import PromptBuilder
from evolve.proposals.tokens import TokenCounter

__all__ = ["ProposerContract"]


class ProposerContract:
    """Subclass it as `Test...` in a test file and override `make_proposer`; pytest runs the checks.

    `problem` (a name or a folder) gives the parent and the prompt's text; `concurrency` is how many
    proposals are awaited at once; `deterministic` turns on the same-seed check; `timeout` bounds each
    check's wait for answers (seconds), so a proposer that never answers fails instead of hanging.
    """

    problem: ClassVar[str | Path] = "circle_packing"
    concurrency: ClassVar[int] = 4
    deterministic: ClassVar[bool] = False
    timeout: ClassVar[float] = 300.0
    _cache: ClassVar[dict[str, tuple[PromptBuilder, Program]]] = {}

    def make_proposer(self, seed: int) -> Proposer:
        """A fresh proposer under test, seeded with `seed` (called inside the check's event loop)."""
        raise NotImplementedError(f"{type(self).__name__}.make_proposer: return the proposer to test")

    # -- set-up -----------------------------------------------------------------------------------
    def _parts(self) -> tuple[PromptBuilder, Program]:
        key = str(self.problem)
        if key not in ProposerContract._cache:
            from evolve.engine.parts import make_prompts
            from evolve.problems import read_initial_program, resolve

            problem = resolve(self.problem)
            code = read_initial_program(problem)
            parent = Program(id=1, iteration=0, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                             score=1.0, feedback="the initial program", proposer="initial")
            ProposerContract._cache[key] = (make_prompts(Config(problem=problem)), parent)  # as a campaign builds it
        return ProposerContract._cache[key]

    def prompt(self, iteration: int = 1, mode: str = "diff", max_tokens: int | None = None) -> Prompt:
        """A prompt evolve would send for the problem's initial program."""
        builder, parent = self._parts()
        return builder.build(parent, [], [], iteration, mode, max_tokens=max_tokens)

    def run(self, check: Callable[[Proposer], Awaitable[Any]], seed: int = 0) -> Any:
        """Run `check(proposer)` on a fresh proposer in a new event loop, closing the proposer afterwards."""
        async def main() -> Any:
            proposer = self.make_proposer(seed)
            try:
                return await asyncio.wait_for(check(proposer), self.timeout)
            finally:
                await proposer.close()

        return asyncio.run(main())

    @staticmethod
    async def outcome(call: Awaitable[Proposal]) -> Proposal | ProposerError:
        """The proposal, or the `ProposerError` raised (anything else propagates: a broken contract)."""
        try:
            return await call
        except ProposerError as exc:
            return exc

    def assert_applies(self, outcome: object, prompt: Prompt) -> None:
        """`outcome` is a ProposerError, or a Proposal whose text applies to the prompt's parent."""
        if isinstance(outcome, ProposerError):
            return
        assert isinstance(outcome, Proposal), f"propose returned a {type(outcome).__name__}, not a Proposal"
        assert isinstance(outcome.text, str) and outcome.model, f"a proposal needs text and a model: {outcome!r}"
        try:
            apply_proposal(prompt.parent.code, outcome.text)
        except EditError as exc:
            raise AssertionError(f"the proposal does not apply to its parent ({exc}): {outcome.text[:500]}") from None

    # -- the contract -----------------------------------------------------------------------------
    def test_name_is_set(self) -> None:
        async def check(proposer: Proposer) -> None:
            assert isinstance(proposer, Proposer), f"{type(proposer).__name__} does not subclass Proposer"
            assert isinstance(proposer.name, str) and proposer.name, "set the proposer's `name`"

        self.run(check)

    def test_answers_real_prompts(self) -> None:
        prompts = [self.prompt(iteration, mode) for iteration, mode in ((1, "diff"), (2, "full"), (3, "diff"))]

        async def check(proposer: Proposer) -> list[object]:
            return [await self.outcome(proposer.propose(prompt)) for prompt in prompts]

        outcomes = self.run(check)
        for outcome, prompt in zip(outcomes, prompts):
            self.assert_applies(outcome, prompt)
        assert any(isinstance(o, Proposal) for o in outcomes), f"no prompt was answered: {outcomes}"

    def test_propose_built_builds_its_prompt(self) -> None:
        budgets: list[int | None] = []
        built: list[Prompt] = []

        def build(budget: int | None, counter: TokenCounter | None = None, edit_format: str = "auto") -> Prompt:
            assert counter is None or isinstance(counter, TokenCounter), f"counter: {counter!r}"
            assert edit_format in ("auto", "diff", "rewrite", "structured"), f"edit_format={edit_format!r}"
            budgets.append(budget)
            built.append(self.prompt(4))
            return built[-1]

        outcome = self.run(lambda proposer: self.outcome(proposer.propose_built(build)))
        assert built, "propose_built answered without building its prompt"
        assert all(b is None or (isinstance(b, int) and b > 0) for b in budgets), f"budgets: {budgets}"
        self.assert_applies(outcome, built[-1])

    def test_concurrent_proposals(self) -> None:
        prompts = [self.prompt(10 + n, "diff") for n in range(self.concurrency)]

        async def check(proposer: Proposer) -> list[object]:
            return list(await asyncio.gather(*(self.outcome(proposer.propose(p)) for p in prompts)))

        outcomes = self.run(check)
        assert len(outcomes) == len(prompts)
        for outcome, prompt in zip(outcomes, prompts):
            self.assert_applies(outcome, prompt)

    def test_observe_and_close(self) -> None:
        async def check(proposer: Proposer) -> None:
            outcome = await self.outcome(proposer.propose(self.prompt(20)))
            if isinstance(outcome, Proposal):
                proposer.observe(outcome, True)
                proposer.observe(outcome, False)

        self.run(check)

        async def unused(proposer: Proposer) -> None:
            return None

        self.run(unused)  # close() of a proposer that never proposed

    def test_same_seed_same_answers(self) -> None:
        if not self.deterministic:
            pytest.skip("set `deterministic = True` for a proposer whose answers a seed fixes")
        prompts = [self.prompt(30 + n, mode) for n, mode in enumerate(("diff", "full", "diff", "diff"))]

        async def check(proposer: Proposer) -> list[str]:
            answers = []
            for prompt in prompts:
                outcome = await self.outcome(proposer.propose(prompt))
                answers.append(outcome.text if isinstance(outcome, Proposal) else f"error: {outcome}")
            return answers

        assert self.run(check, seed=7) == self.run(check, seed=7), "the same seed gave different answers"
