"""What a proposer receives and returns, and the base class every proposer subclasses."""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from evolve.errors import ProposerError
from evolve.program import Program
from evolve.proposals.tokens import TokenCounter

__all__ = ["Prompt", "PromptTooLarge", "Proposal", "Proposer"]


class PromptTooLarge(ProposerError):
    """The prompt does not fit the model's context even with everything optional left out: never sent.

    `needed` is the bare prompt's tokens as counted, `allowed` the model's budget (0 where unknown).
    """

    def __init__(self, message: str, model: str = "", needed: int = 0, allowed: int = 0) -> None:
        super().__init__(message, model)
        self.needed, self.allowed = needed, allowed


_OPTIMISTIC_CHARS_PER_TOKEN = 6.0  # coarser than any tokenizer splits a prompt of code: past it, no hope


@dataclass(frozen=True)
class Prompt:
    """One request for a proposal: chat messages for an LLM, and the same facts as data.

    Attributes:
        messages: OpenAI-style chat messages (`role`, `content`).
        parent: the program to improve.
        inspirations: other programs shown beside it.
        iteration: the campaign iteration this proposal is for.
        mode: what is asked for: `diff`, `full` (a rewrite) or `crossover` (combine with `second_parent`).
        second_parent: the other parent of a crossover.
        tokens: the prompt tokens as its model's `Proposer.token_counter` counts them (without one:
            characters / `prompt.chars_per_token`).
        trimmed: what was left out to fit the model's context (e.g. `2 inspirations`, `the scratchpad`).
    """

    messages: list[dict[str, str]]
    parent: Program
    inspirations: list[Program] = field(default_factory=list)
    iteration: int = 0
    mode: str = "diff"
    second_parent: Program | None = None
    tokens: int = 0
    trimmed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proposal:
    """A proposer's answer: text holding SEARCH/REPLACE blocks, a fenced full program or JSON edits.

    Attributes:
        text: the reply.
        model: which model or mutator wrote it.
        prompt_tokens, completion_tokens: usage as reported by the endpoint (0 offline).
        cost: USD, from the configured prices.
        truncated: the reply stopped at max_tokens.
        reason: why this model was chosen (ensembles).
    """

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    truncated: bool = False
    reason: str = ""


class Proposer(abc.ABC):
    r"""Turns a prompt into a proposal: the text of an edit of the prompt's parent. Subclass it for a new kind.

    Contract:
      - `propose` is a coroutine awaited concurrently, up to `llm.concurrency` times at once, on the
        campaign's one event loop; it must not block that loop (run blocking work in a thread).
      - It answers with a `Proposal` whose `text` holds SEARCH/REPLACE blocks, a fenced full program or a
        JSON object of structured edits (what `evolve.proposals.edits.apply_proposal` applies to
        `prompt.parent.code`), or raises
        `evolve.errors.ProposerError` (the campaign records the failure and goes on; too many in a row
        stop it). Any other exception is a bug and ends the campaign.
      - Given the same seed and the same sequence of prompts, a proposer without a network (the offline
        engine) answers the same; a model's answers are its endpoint's business.
      - The prompt and the programs in it are shared: read them, never mutate them. The returned
        `Proposal` is the campaign's (it is frozen).
      - `name` names the proposer in the database and the logs (`Proposal.model` names who wrote a reply).

    The hooks do nothing by default: `observe(proposal, improved)` is called once a proposal's child is
    scored (or failed to apply), `observe_best(proposal)` after it when that child is the campaign's new
    best, `observe_unchanged(proposal)` after it when that child scored exactly as its parent (its change made
    no difference), `close()` once at the campaign's end, and `propose_built(build)` instead
    of `propose`, so that a proposer choosing among models builds the prompt only once one is free;
    `prompt_budget` (None: no limit) is the prompt tokens its model takes, which the prompt is fitted to, as
    `token_counter` counts them (None: an estimate from the characters), and `calibrate(messages)` teaches
    that counter a prompt's true size before an uncalibrated estimate trims it (`build_prompt`);
    `edit_format` (`auto`: the text formats the config draws) is the kind of edit its prompt asks for
    (`diff`, `rewrite`, `structured`: a JSON object of edits, see `evolve.proposals.structured`), passed to
    the builder as `build(budget, counter, edit_format)` when it is not `auto`.

    Example (scales the float constants of the parent's EVOLVE-BLOCKs by a random factor near 1)::

        import random
        import re

        from evolve.errors import ProposerError
        from evolve.proposals.edits import evolve_blocks
        from evolve.proposals.llm.base import Prompt, Proposal, Proposer

        class NudgeConstants(Proposer):
            name = "nudge-constants"

            def __init__(self, config=None, seed: int = 0) -> None:
                self._rng = random.Random(seed)  # its only randomness: the same under the same seed

            def _nudge(self, match: re.Match) -> str:
                return f"{float(match[0]) * self._rng.uniform(0.8, 1.2):.6g}"

            async def propose(self, prompt: Prompt) -> Proposal:
                code, child, last = prompt.parent.code, "", 0
                for start, end in evolve_blocks(code):
                    child += code[last:start] + re.sub(r"\b\d+\.\d+\b", self._nudge, code[start:end])
                    last = end
                child += code[last:]
                if child == code:
                    raise ProposerError(f"{self.name}: no float constant to change", self.name)
                return Proposal(text=f"```python\n{child}```", model=self.name)

    Hand one in as `Campaign(config, run_dir, proposer=NudgeConstants(seed=1))`, or register the class
    in the `evolve.proposers` entry-point group and choose it with `llm.kind=NAME`: it is then built as
    `cls(config, seed)` with the `LLMConfig` and the campaign's seed. `evolve.testing.ProposerContract`
    checks the contract.
    """

    name: str = ""
    edit_format: str = "auto"

    @abc.abstractmethod
    async def propose(self, prompt: Prompt) -> Proposal:
        """Return a proposal for `prompt`, or raise `ProposerError`."""

    async def propose_built(self, build: Callable[..., Prompt]) -> Proposal:
        """Propose for the prompt `build(budget, counter)` returns: `budget` is the prompt tokens the chosen
        model allows (None: no limit), `counter` its `token_counter`. `build` is called once a model is free,
        so the prompt's recent failures are fresh and it fits that model's context; by default at once."""
        return await self.propose(await self.build_prompt(build))

    async def build_prompt(self, build: Callable[..., Prompt]) -> Prompt:
        """Return `build(prompt_budget, token_counter)`; where an estimate not yet calibrated would trim the
        prompt or refuse it (`PromptTooLarge`), `calibrate` the counter on the whole prompt and build again."""
        counter, budget = self.token_counter, self.prompt_budget
        if self.edit_format != "auto":
            build = functools.partial(_with_format, build, self.edit_format)
        if counter is None or counter.calibrated or budget is None:
            return build(budget, counter)
        try:
            prompt = build(budget, counter)
            if not prompt.trimmed:
                return prompt
        except PromptTooLarge as exc:
            hopeless = exc.needed * counter.prior / _OPTIMISTIC_CHARS_PER_TOKEN > budget
            if hopeless or not await self.calibrate(build(None, counter).messages):
                raise
            return build(budget, counter)
        return build(budget, counter) if await self.calibrate(build(None, counter).messages) else prompt

    async def calibrate(self, messages: list[dict[str, str]]) -> bool:
        """Teach `token_counter` the true size of `messages` (for a prompt an estimate would not let through);
        True when it learnt something. By default it cannot."""
        return False

    @property
    def prompt_budget(self) -> int | None:
        """The prompt tokens this proposer's model takes (its context less its reply), None: no limit."""
        return None

    @property
    def token_counter(self) -> TokenCounter | None:
        """Counts this proposer's model's prompt tokens (None: estimate them from the characters)."""
        return None

    def observe(self, proposal: Proposal, improved: bool) -> None:
        """Called once the child of `proposal` is scored: `improved` when it beat its parent (False for a
        reply that did not apply, a duplicate or an invalid child)."""

    def observe_best(self, proposal: Proposal) -> None:
        """Called right after `observe` when the child of `proposal` beat the campaign's best program so far."""

    def observe_unchanged(self, proposal: Proposal) -> None:
        """Called right after `observe` when the child of `proposal` is valid and scored exactly as its parent
        (its change made no difference the evaluator could see)."""

    async def close(self) -> None:
        """Called once at the campaign's end: release clients and connections."""


def _with_format(build: Callable[..., Prompt], edit_format: str, budget: int | None, counter: TokenCounter | None
                 ) -> Prompt:
    """`build`'s prompt asking for `edit_format`."""
    return build(budget, counter, edit_format)
