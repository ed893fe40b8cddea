"""The engine's side of the sandbox: which backend a config names, and what a candidate must not see."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from evolve.config import SandboxConfig
from evolve.errors import ConfigError
from sandboxes import DEFAULT_HIDDEN, ProcessSandbox, Sandbox

__all__ = ["hidden_paths", "make_sandbox"]


def hidden_paths(problem_dirs: Iterable[str] | None = None) -> list[str]:
    """Homes and shared temp dirs, every problem's folder (its evaluator and data) and the history of
    the checkout a folder lives in (which holds every version of them)."""
    if problem_dirs is None:
        from evolve.problems import discover

        problem_dirs = [p.directory for p in discover().values()]
    hidden = list(DEFAULT_HIDDEN)
    for directory in problem_dirs:
        if not directory:
            continue
        folder = Path(directory).resolve()
        hidden.append(str(folder))
        for parent in folder.parents:
            if (parent / ".git").is_dir():
                hidden.append(str(parent / ".git"))
                break
    return sorted(set(hidden))


def make_sandbox(config: SandboxConfig | Sandbox | None = None, hide: Iterable[str] | None = None) -> Sandbox:
    """Build the sandbox a config names; a Sandbox object is used as is, None gives the default.

    `hide` overrides `config.hide`; when both are None the candidate is kept from `hidden_paths()`.
    """
    if isinstance(config, Sandbox):
        return config
    config = config or SandboxConfig()
    if config.kind == "process":
        hidden = list(hide) if hide is not None else config.hide if config.hide is not None else hidden_paths()
        return ProcessSandbox(user=config.user, network_isolation=config.network_isolation,
                              preload=tuple(config.preload), scratch_mb=config.scratch_mb,
                              scratch_inodes=config.scratch_inodes, hide=hidden)
    if config.kind == "docker":
        from sandboxes.docker import DockerSandbox

        return DockerSandbox(image=config.image, user=config.user, network_isolation=config.network_isolation,
                             preload=tuple(config.preload), scratch_mb=config.scratch_mb,
                             scratch_inodes=config.scratch_inodes, memory_mb=config.memory_mb, pids=config.pids,
                             cpus=config.cpus)
    raise ConfigError(f"sandbox.kind={config.kind!r} is not known; use sandbox=process or sandbox=docker")
