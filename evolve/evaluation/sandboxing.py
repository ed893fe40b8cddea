"""The engine's side of the sandbox: which backend a config names, and what a candidate may see.

`sandbox.kind` is `process`, `docker`, or the name of a plugin in the `evolve.sandboxes` entry-point group
(`evolve.plugins`): a `sandboxes.Sandbox` subclass built as `cls(config, allow)`, with the `SandboxConfig`
and the allow-list of paths a candidate may read (`visible_paths`). `evolve.testing.SandboxContract` is
the attack suite such a backend must pass.
"""

from __future__ import annotations

from pathlib import Path

from evolve.config import ProblemConfig, SandboxConfig
from evolve.errors import ConfigError
from sandboxes import ProcessSandbox, Sandbox, default_view

__all__ = ["BUILT_IN", "make_sandbox", "visible_paths"]

BUILT_IN = ("process", "docker")


def visible_paths(config: SandboxConfig, problem: ProblemConfig | None = None) -> list[str]:
    """The allow-list of a candidate's view: the system's libraries, the interpreter and its standard
    library, the preloaded and the problem's packages, the problem's declared data folders (relative
    to its folder), and `sandbox.allow`. Nothing else: no checkout, run dir, home or evaluator data."""
    packages = list(dict.fromkeys([*config.preload, *(problem.packages if problem else [])]))
    paths = default_view(packages)
    for entry in problem.data if problem else []:
        path = Path(problem.directory) / entry
        if not path.exists():
            raise ConfigError(f"problem {problem.name!r}: data folder {path} does not exist (problem.data)")
        paths.append(str(path.resolve()))
    return paths + list(config.allow)


def make_sandbox(config: SandboxConfig | Sandbox | None = None, problem: ProblemConfig | None = None) -> Sandbox:
    """Build the sandbox a config names for `problem`'s candidates; a Sandbox object is used as is,
    None gives the default."""
    if isinstance(config, Sandbox):
        return config
    config = config or SandboxConfig()
    if config.interpreter not in ("host", "image"):
        raise ConfigError(f"sandbox.interpreter={config.interpreter!r} is not known; use host (bind this machine's "
                          "interpreter) or image (the image's own: `evolve sandbox build --interpreter`)")
    if config.interpreter == "image" and config.kind != "docker":
        raise ConfigError(f"sandbox.interpreter=image needs sandbox=docker (it names a Docker image), not "
                          f"sandbox={config.kind}; use sandbox=docker or sandbox.interpreter=host")
    allow = visible_paths(config, problem)
    if config.kind == "process":
        return ProcessSandbox(user=config.user, network_isolation=config.network_isolation,
                              preload=tuple(config.preload), scratch_mb=config.scratch_mb,
                              scratch_inodes=config.scratch_inodes, allow=allow)
    if config.kind == "docker":
        from sandboxes.docker import DockerSandbox

        packages = list(dict.fromkeys([*config.preload, *(problem.packages if problem else [])]))
        if config.interpreter == "image":  # the image brings the interpreter, system libraries and packages
            provided = set(default_view(packages))
            allow = [p for p in allow if p not in provided]
        return DockerSandbox(image=config.image, user=config.user, network_isolation=config.network_isolation,
                             preload=tuple(config.preload), scratch_mb=config.scratch_mb,
                             scratch_inodes=config.scratch_inodes, memory_mb=config.memory_mb, pids=config.pids,
                             cpus=config.cpus, allow=allow, interpreter=config.interpreter, packages=packages)
    return _plugin(config, allow)


def _plugin(config: SandboxConfig, allow: list[str]) -> Sandbox:
    """The sandbox of the `evolve.sandboxes` plugin `sandbox.kind` names."""
    from evolve import plugins

    sandbox: Sandbox = plugins.build_plugin(plugins.SANDBOXES, config.kind, config, allow, kind="sandbox.kind",
                                            built_in=BUILT_IN, base=Sandbox, hint="a sandboxes.Sandbox subclass")
    return sandbox
