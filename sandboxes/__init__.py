"""Where untrusted candidate code runs. Candidates return plain JSON; nothing is unpickled from them."""

from __future__ import annotations

from evolve.config import SandboxConfig
from sandboxes.base import CandidateCrash, CandidateError, CandidateTimeout, Sandbox, Session
from sandboxes.process import ProcessSandbox

__all__ = [
    "CandidateCrash",
    "CandidateError",
    "CandidateTimeout",
    "ProcessSandbox",
    "Sandbox",
    "Session",
    "make_sandbox",
]


def make_sandbox(config: SandboxConfig | Sandbox | None = None) -> Sandbox:
    """Build the sandbox a config names; a Sandbox object is used as is, None gives the default."""
    from evolve.errors import ConfigError

    if isinstance(config, Sandbox):
        return config
    config = config or SandboxConfig()
    if config.kind == "process":
        return ProcessSandbox(user=config.user, network_isolation=config.network_isolation,
                              preload=tuple(config.preload), scratch_mb=config.scratch_mb, hide=config.hide)
    if config.kind == "docker":
        from sandboxes.docker import DockerSandbox

        return DockerSandbox(image=config.image, user=config.user, network_isolation=config.network_isolation,
                             preload=tuple(config.preload), scratch_mb=config.scratch_mb,
                             memory_mb=config.memory_mb, pids=config.pids, cpus=config.cpus)
    raise ConfigError(f"sandbox.kind={config.kind!r} is not known; use sandbox=process or sandbox=docker")
