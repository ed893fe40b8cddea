"""Replay: play back the proposer responses a past campaign recorded, without any model.

Together with the controller's replay mode (each iteration takes the recorded parent and
inspirations, and decides in the recorded order) this reproduces the recorded sequence of programs
exactly, for an evaluator that is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from evolve.errors import ConfigError, ProposerError
from evolve.llm.base import Prompt, Proposal

__all__ = ["ReplayProposer", "ReplayStep"]


@dataclass(frozen=True)
class ReplayStep:
    """One recorded call: what it was asked about and what came back."""

    iteration: int
    parent_hash: str
    inspiration_hashes: tuple[str, ...]
    model: str
    response: str | None
    error: str
    prompt_tokens: int
    completion_tokens: int
    cost: float


class ReplayProposer:
    """Answers iteration i with the response recorded for iteration i of the `source` run dir."""

    name = "replay"

    def __init__(self, source: str | Path) -> None:
        from evolve.campaign import database_url
        from evolve.config import to_config
        from evolve.database import ProgramDatabase

        run_dir = Path(source)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"llm.source={source}: not a run dir (no config.yaml); give the run dir to replay")
        config = to_config(OmegaConf.load(run_dir / "config.yaml"))
        with ProgramDatabase(database_url(config, run_dir), config.name or "", config.problem.name,
                             config.database) as db:
            calls = db.calls()
        if not calls:
            raise ConfigError(f"llm.source={source}: the run recorded no proposer calls to replay")
        self.steps = [ReplayStep(c["iteration"], c["parent_hash"], tuple(c["inspiration_hashes"] or ()),
                                 c["model"], c["response"], c["error"], c["prompt_tokens"],
                                 c["completion_tokens"], c["cost"]) for c in calls]
        self._by_iteration = {s.iteration: s for s in self.steps}

    def step(self, iteration: int) -> ReplayStep:
        """The recorded call of `iteration`."""
        return self._by_iteration[iteration]

    async def propose(self, prompt: Prompt) -> Proposal:
        """The recorded response (or the recorded failure) of the prompt's iteration."""
        step = self._by_iteration.get(prompt.iteration)
        if step is None:
            raise ProposerError(f"replay: nothing was recorded for iteration {prompt.iteration}")
        if step.response is None:
            raise ProposerError(step.error, step.model)
        return Proposal(text=step.response, model=step.model, prompt_tokens=step.prompt_tokens,
                        completion_tokens=step.completion_tokens, cost=0.0, reason="replay")
