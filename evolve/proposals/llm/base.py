"""What a proposer receives and returns, and the protocol every proposer follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from evolve.errors import ProposerError
from evolve.program import Program

__all__ = ["Prompt", "PromptTooLarge", "Proposal", "Proposer"]


class PromptTooLarge(ProposerError):
    """The prompt does not fit the model's context even with everything optional left out: never sent."""


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
        tokens: the estimated prompt tokens (characters / `prompt.chars_per_token`).
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
    """A proposer's answer: text holding SEARCH/REPLACE blocks or a fenced full program.

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


@runtime_checkable
class Proposer(Protocol):
    """Anything that turns a prompt into a proposal.

    `propose` is a coroutine and may be awaited concurrently up to `llm.concurrency` times; it raises
    `evolve.errors.ProposerError` on failure (the campaign records it and goes on). A proposer may also
    define `observe(proposal, improved)`, which the campaign calls once the child is scored,
    `async close()`, and `async propose_built(build)`: `build(budget)` returns the prompt fitted to at
    most `budget` tokens (None: no limit) and is called only once a model is free to take the request,
    so the prompt's recent failures are fresh and it fits the chosen model's context.

    Example::

        class Echo:
            name = "echo"
            async def propose(self, prompt):
                return Proposal(text="```python\\n" + prompt.parent.code + "```", model=self.name)
    """

    name: str

    async def propose(self, prompt: Prompt) -> Proposal:
        """Return a proposal for `prompt`."""
        ...
