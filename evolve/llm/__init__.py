"""Proposers: the offline mutator and OpenAI-compatible models, behind one protocol."""

from __future__ import annotations

from evolve.config import LLMConfig
from evolve.errors import ConfigError
from evolve.llm.base import Prompt, Proposal, Proposer
from evolve.llm.ensemble import Ensemble
from evolve.llm.offline import OfflineMutator
from evolve.llm.openai_model import OpenAIModel
from evolve.llm.replay import ReplayProposer

__all__ = ["Ensemble", "OfflineMutator", "OpenAIModel", "Prompt", "Proposal", "Proposer", "ReplayProposer",
           "make_proposer"]


def make_proposer(config: LLMConfig | Proposer | None = None, seed: int = 0) -> Proposer:
    """Build the proposer a config names; a Proposer object is used as is, None gives the offline one."""
    if config is not None and not isinstance(config, LLMConfig):
        return config
    config = config or LLMConfig()
    if config.kind == "offline":
        return OfflineMutator(seed=seed, max_edits=config.max_edits)
    if config.kind == "replay":
        if not config.source:
            raise ConfigError("llm=replay needs llm.source=RUN_DIR, the run whose responses to play back")
        return ReplayProposer(config.source)
    if config.kind in ("openai", "ensemble"):
        models = config.model_configs()
        if not models:
            raise ConfigError("llm.kind=ensemble needs at least one entry in llm.models")
        try:
            return Ensemble([OpenAIModel(m) for m in models], weights=[m.weight for m in models],
                            concurrency=[m.concurrency for m in models], selection=config.selection,
                            exploration=config.exploration, rest_after=config.rest_after,
                            rest_seconds=config.rest_seconds, max_rest_seconds=config.max_rest_seconds,
                            max_wait_seconds=config.max_wait_seconds, seed=seed)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    raise ConfigError(f"llm.kind={config.kind!r} is not known; use offline, openai, ensemble or replay")
