"""Proposers: the offline mutator and OpenAI-compatible models, behind one protocol."""

from __future__ import annotations

from evolve.config import LLMConfig
from evolve.errors import ConfigError
from evolve.llm.base import Prompt, Proposal, Proposer
from evolve.llm.offline import OfflineMutator
from evolve.llm.openai_model import OpenAIModel

__all__ = ["OfflineMutator", "OpenAIModel", "Prompt", "Proposal", "Proposer", "make_proposer"]


def make_proposer(config: LLMConfig | Proposer | None = None, seed: int = 0) -> Proposer:
    """Build the proposer a config names; a Proposer object is used as is, None gives the offline one."""
    if config is not None and not isinstance(config, LLMConfig):
        return config
    config = config or LLMConfig()
    if config.kind == "offline":
        return OfflineMutator(seed=seed, max_edits=config.max_edits)
    if config.kind == "openai":
        return OpenAIModel(config)
    raise ConfigError(f"llm.kind={config.kind!r} is not known; use llm=offline or llm=openai")
