"""Where untrusted candidate code runs. Candidates return plain JSON; nothing is unpickled from them.

This package depends on the standard library only (the Docker backend imports the `docker` SDK when
it is used, and the zygote `pyseccomp` inside the sandbox): callers hand in everything it needs,
such as the limits of a session and the paths a candidate may see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandboxes.base import Array, Sandbox, Session
from sandboxes.errors import CandidateCrash, CandidateError, CandidateTimeout, SandboxUnavailable
from sandboxes.limits import SandboxLimits
from sandboxes.text import TEXT_CAPS, candidate_text
from sandboxes.view import default_view, package_paths

if TYPE_CHECKING:
    from sandboxes.process import ProcessSandbox


def __getattr__(name: str) -> Any:
    # the process backend (asyncio, the fork server) is imported when used: readers of the limits don't pay
    if name == "ProcessSandbox":
        from sandboxes.process import ProcessSandbox

        return ProcessSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "TEXT_CAPS",
    "Array",
    "CandidateCrash",
    "CandidateError",
    "CandidateTimeout",
    "ProcessSandbox",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailable",
    "Session",
    "candidate_text",
    "default_view",
    "package_paths",
]
