"""Proposers: the offline mutator and OpenAI-compatible models, behind one base class.

Names are imported on first use, so a module of this package that needs none of them (`evolve.observe.outcomes`,
which `evolve status` reads) does not pull in the openai SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from evolve.config import LLMConfig
from evolve.errors import ConfigError

if TYPE_CHECKING:
    from evolve.proposals.llm.base import Prompt, Proposal, Proposer
    from evolve.proposals.llm.ensemble import Ensemble
    from evolve.proposals.llm.offline import OfflineMutator
    from evolve.proposals.llm.openai_model import OpenAIModel
    from evolve.proposals.llm.replay import ReplayProposer

__all__ = ["BUILT_IN", "Ensemble", "OfflineMutator", "OpenAIModel", "Prompt", "Proposal", "Proposer", "ReplayProposer",
           "make_proposer"]

_HOMES = {"Prompt": "evolve.proposals.llm.base", "Proposal": "evolve.proposals.llm.base",
          "Proposer": "evolve.proposals.llm.base",
          "Ensemble": "evolve.proposals.llm.ensemble", "OfflineMutator": "evolve.proposals.llm.offline",
          "OpenAIModel": "evolve.proposals.llm.openai_model", "ReplayProposer": "evolve.proposals.llm.replay"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'evolve.proposals.llm' has no attribute {name!r}")


BUILT_IN = ("offline", "openai", "ensemble", "tiers", "replay")


def make_proposer(config: LLMConfig | Proposer | None = None, seed: int = 0) -> Proposer:
    """Build the proposer a config names; a Proposer object is used as is, None gives the offline one.

    `llm.kind` is a built-in name (`BUILT_IN`) or the name of a plugin in the `evolve.proposers` entry-point
    group, which is built as `plugin(config, seed)` and must give a `Proposer`."""
    from evolve.proposals.llm.base import Proposer

    if config is not None and not isinstance(config, LLMConfig):
        if not isinstance(config, Proposer):
            raise ConfigError(f"proposer={type(config).__name__}: not a proposer; subclass "
                              "evolve.proposals.llm.Proposer (an async `propose(prompt)` and a `name`)")
        return config
    config = config or LLMConfig()
    if config.kind == "offline":  # each kind imports only what it needs: the openai SDK alone takes ~1 s
        from evolve.proposals.llm.offline import OfflineMutator

        return OfflineMutator(seed=seed, max_edits=config.max_edits)
    if config.kind == "replay":
        from evolve.proposals.llm.replay import ReplayProposer

        if not config.source:
            raise ConfigError("llm=replay needs llm.source=RUN_DIR, the run whose responses to play back")
        return ReplayProposer(config.source)
    if config.kind in ("openai", "ensemble", "tiers"):
        from evolve.proposals.llm.ensemble import Ensemble
        from evolve.proposals.llm.openai_model import OpenAIModel

        models = config.model_configs()
        if not models:
            raise ConfigError(f"llm.kind={config.kind} needs at least one entry in llm.models")
        try:
            return Ensemble([OpenAIModel(m) for m in models], weights=[m.weight for m in models],
                            concurrency=[m.concurrency for m in models],
                            selection="tiers" if config.kind == "tiers" else config.selection,
                            escalate_after=config.escalate_after,
                            exploration=config.exploration, rest_after=config.rest_after,
                            rest_seconds=config.rest_seconds, max_rest_seconds=config.max_rest_seconds,
                            max_wait_seconds=config.max_wait_seconds,
                            warn_after_seconds=config.warn_after_seconds, seed=seed)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    from evolve import plugins

    proposer: Proposer = plugins.build_plugin(plugins.PROPOSERS, config.kind, config, seed, kind="llm.kind",
                                              built_in=BUILT_IN, base=Proposer,
                                              hint="an evolve.proposals.llm.Proposer subclass")
    return proposer
