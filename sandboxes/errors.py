"""What a sandbox raises: the candidate's failures, and a sandbox that cannot run here at all."""

from __future__ import annotations

__all__ = ["CandidateCrash", "CandidateError", "CandidateTimeout", "SandboxUnavailable"]


class CandidateError(Exception):
    """The candidate failed: it raised, returned something that is not plain JSON, or broke the protocol.

    The message is safe to show in a prompt (it is cut and holds only the candidate's own text).
    `index` is the call of a `call_many` batch that failed, when known.
    """

    index: int | None = None


class CandidateTimeout(CandidateError):
    """A call ran past its wall-clock limit; the whole session was killed with everything it started."""


class CandidateCrash(CandidateError):
    """The session process died (a signal, an rlimit, `os._exit`, a segfault) before answering."""


class SandboxUnavailable(Exception):
    """The sandbox cannot be set up on this machine (an unknown user, no Docker engine, a missing
    image). Not the candidate's fault: the message names the setting or the command that fixes it."""
