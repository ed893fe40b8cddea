"""evolve: an AlphaEvolve-style evolutionary code optimizer.

The pieces a user composes: `Campaign` (the controller), `ProgramDatabase` (storage and sampling),
proposers in `evolve.proposals.llm`, evaluators in the top-level `evaluators` package and sandboxes in
`sandboxes`. The CLI (`evolve run ...`) wires them from a Hydra config.

Names are imported on first use, so `import evolve.config` or `evolve.storage.rundir` (which the read-only
verbs need) does not pull in Ray and the controller.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Campaign",
    "CampaignResult",
    "Config",
    "EvolveError",
    "Program",
    "ProgramDatabase",
    "ProgramStatus",
    "Run",
    "arun",
    "open_run",
    "run",
]
__version__ = "0.1.0"

_HOMES = {
    "Run": "evolve.api",
    "arun": "evolve.api",
    "open_run": "evolve.api",
    "run": "evolve.api",
    "Campaign": "evolve.engine.campaign",
    "CampaignResult": "evolve.engine.campaign",
    "Config": "evolve.config",
    "EvolveError": "evolve.errors",
    "Program": "evolve.program",
    "ProgramDatabase": "evolve.storage.database",
    "ProgramStatus": "evolve.program",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'evolve' has no attribute {name!r}")
