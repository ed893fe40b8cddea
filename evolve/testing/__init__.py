"""Helpers for testing evolve and the parts built on it (shipped with the package).

The contract suites are pytest classes an author subclasses: `ContractSuite` for a problem's evaluator,
`SandboxContract` for a sandbox backend (the attack suite), `ProposerContract` for a proposer,
`PopulationContract` for a selection strategy. They are
imported on first use, so the fake server does not need pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from evolve.testing.fake_openai import FakeOpenAIServer, FakeReply

if TYPE_CHECKING:
    from evolve.testing.contract import ContractSuite
    from evolve.testing.population_contract import PopulationContract
    from evolve.testing.proposer_contract import ProposerContract
    from evolve.testing.sandbox_contract import SandboxContract

__all__ = ["ContractSuite", "FakeOpenAIServer", "FakeReply", "PopulationContract", "ProposerContract",
           "SandboxContract"]

_HOMES = {"ContractSuite": "evolve.testing.contract", "PopulationContract": "evolve.testing.population_contract",
          "ProposerContract": "evolve.testing.proposer_contract",
          "SandboxContract": "evolve.testing.sandbox_contract"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'evolve.testing' has no attribute {name!r}")
