"""The resources one candidate session may use: the sandbox's half of the contract with its caller."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KILL_MULTIPLE", "SandboxLimits"]

KILL_MULTIPLE = 20.0
"""A wall-clock kill is set at this many times the CPU budget it guards: it ends sleepers and blocked
calls, never a candidate that computes within its CPU budget on a busy machine."""


@dataclass
class SandboxLimits:
    """Resource limits for one candidate session (all of a cascade's calls for one program).

    Not frozen, because the engine's Hydra config merges overrides into it; treat instances as read-only.

    Attributes:
        wall_seconds: wall-clock kill for the whole session, counted only while calls run (the
            evaluator's own time between calls is not the candidate's): it ends sleepers, so set it to at
            least `KILL_MULTIPLE` times the CPU the session may use (a busy machine stretches wall time).
        call_timeout: default wall-clock kill of one call when the evaluator gives none; also the CPU
            budget of loading the program (its import), measured outside the sandbox, whose wall-clock
            kill is `KILL_MULTIPLE` times it.
        cpu_seconds: CPU budget of the whole session: every process and thread it starts, from its
            import on, between calls included, measured outside the sandbox (its cgroup, else /proc);
            the session is killed past it. Also RLIMIT_CPU of each of its processes.
        memory_mb: RLIMIT_AS (address space) for the session process.
        max_processes: RLIMIT_NPROC (enforced for the unprivileged sandbox user).
        file_size_mb: RLIMIT_FSIZE: the largest file it may write, stdout and stderr included.
        open_files: RLIMIT_NOFILE.
        max_result_bytes: largest JSON reply accepted from the candidate for one call.
        max_result_depth: deepest nesting of lists and dicts accepted in a reply.
    """

    wall_seconds: float = 60.0
    call_timeout: float = 10.0
    cpu_seconds: int = 60
    memory_mb: int = 2048
    max_processes: int = 64
    file_size_mb: int = 16
    open_files: int = 64
    max_result_bytes: int = 4_000_000
    max_result_depth: int = 64
