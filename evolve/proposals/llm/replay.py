"""The replay proposer: answers each iteration with the response a past campaign recorded for it."""

from __future__ import annotations

from pathlib import Path

from evolve.errors import ProposerError
from evolve.proposals.llm.base import Prompt, Proposal, Proposer
from evolve.storage.recording import Recording

__all__ = ["ReplayProposer"]


class ReplayProposer(Proposer):
    """Answers iteration i with the response recorded for iteration i (no model, no network).

    Pair it with `evolve.engine.replay.ReplaySchedule` on the same `Recording` to reproduce a campaign.
    """

    name = "replay"

    def __init__(self, source: Recording | str | Path) -> None:
        self.recording = source if isinstance(source, Recording) else Recording.load(source)

    async def propose(self, prompt: Prompt) -> Proposal:
        """The recorded response (or the recorded failure) of the prompt's iteration."""
        step = self.recording.step(prompt.iteration)
        if step is None:
            raise ProposerError(f"replay: nothing was recorded for iteration {prompt.iteration}")
        if step.response is None:
            raise ProposerError(step.error, step.model)
        return Proposal(text=step.response, model=step.model, prompt_tokens=step.prompt_tokens,
                        completion_tokens=step.completion_tokens, cost=0.0, reason="replay")
