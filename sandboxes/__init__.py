"""Where untrusted candidate code runs. Candidates return plain JSON; nothing is unpickled from them.

This package depends on the standard library only (the Docker backend imports the `docker` SDK when
it is used, and the zygote `pyseccomp` inside the sandbox): callers hand in everything it needs,
such as the limits of a session and the paths a candidate may see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandboxes.base import Array, Picked, Sandbox, Session
from sandboxes.errors import CandidateCrash, CandidateError, CandidateTimeout, SandboxUnavailable
from sandboxes.limits import KILL_MULTIPLE, SandboxLimits
from sandboxes.text import TEXT_CAPS, candidate_text
from sandboxes.view import default_view, package_paths

if TYPE_CHECKING:
    from sandboxes.process import ProcessSandbox


def seccomp_allow_list() -> list[str]:
    """Return the syscalls a candidate may make on this machine (every other one fails with EPERM), or []
    when pyseccomp cannot build the filter here."""
    from sandboxes._layers import seccomp_filter

    flt, allowed = seccomp_filter()
    return list(allowed) if flt is not None else []


def __getattr__(name: str) -> Any:
    # the process backend (asyncio, the fork server) is imported when used: readers of the limits don't pay
    if name == "ProcessSandbox":
        from sandboxes.process import ProcessSandbox

        return ProcessSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "KILL_MULTIPLE",
    "TEXT_CAPS",
    "Array",
    "CandidateCrash",
    "CandidateError",
    "CandidateTimeout",
    "Picked",
    "ProcessSandbox",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailable",
    "Session",
    "candidate_text",
    "default_view",
    "package_paths",
    "seccomp_allow_list",
]
