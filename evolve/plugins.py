"""Third-party parts found through entry points (`importlib.metadata`), by group and name.

A package declares its parts in its `pyproject.toml`; each group's name is chosen by a config key:

    [project.entry-points."evolve.problems"]      # a package whose folder holds a problem: problem=my_problem
    my_problem = "my_package.my_problem"
    [project.entry-points."evolve.proposers"]     # a `Proposer` subclass: llm.kind=my_model
    my_model = "my_package.proposer:MyModel"
    [project.entry-points."evolve.sandboxes"]     # a `sandboxes.Sandbox` subclass: sandbox.kind=my_vm
    my_vm = "my_package.sandbox:MyVM"
    [project.entry-points."evolve.populations"]   # a `Population` subclass: database.population=my_pick
    my_pick = "my_package.population:MyPick"

`EVOLVE_DISABLE_PLUGINS=1` turns discovery off: only the built-in parts are then known.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Sequence
from typing import Any

from evolve.errors import ConfigError, EvolveError

__all__ = ["DISABLE_VARIABLE", "POPULATIONS", "PROBLEMS", "PROPOSERS", "SANDBOXES", "build_plugin", "enabled",
           "entry_points", "installed", "load_plugin"]

DISABLE_VARIABLE = "EVOLVE_DISABLE_PLUGINS"
PROBLEMS = "evolve.problems"
PROPOSERS = "evolve.proposers"
SANDBOXES = "evolve.sandboxes"
POPULATIONS = "evolve.populations"


def enabled() -> bool:
    """Whether plugins are looked for (`EVOLVE_DISABLE_PLUGINS` unset, empty or 0)."""
    return os.environ.get(DISABLE_VARIABLE, "") in ("", "0")


def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """Every entry point of `group`, in the order installed (none while discovery is turned off)."""
    return list(importlib.metadata.entry_points(group=group)) if enabled() else []


def installed(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    """The entry points of `group` by name (none while discovery is turned off)."""
    return {ep.name: ep for ep in entry_points(group)}


def load_plugin(group: str, name: str, *, kind: str, built_in: Sequence[str] = ()) -> Any:
    """What the entry point `name` of `group` points to; one line naming the choices when there is none.

    `kind` is the config key that chose it (`llm.kind`), `built_in` the names that key knows without plugins."""
    named = [ep for ep in entry_points(group) if ep.name == name]
    if not named:
        found = sorted(installed(group))
        plugins = ", ".join(found) or ("none" if enabled() else f"none ({DISABLE_VARIABLE} is set)")
        raise ConfigError(f"{kind}={name!r} is not known; use one of {', '.join(built_in)}; installed plugins "
                          f"({group}): {plugins}")
    if len({ep.value for ep in named}) > 1:
        raise ConfigError(f"{kind}={name!r}: two plugins of {group} have that name ("
                          f"{' and '.join(sorted({ep.value for ep in named}))}); uninstall one of their packages")
    ep = named[0]
    try:
        return ep.load()
    except Exception as exc:  # noqa: BLE001 (a plugin's import may fail in any way: say which plugin in one line)
        raise ConfigError(f"{kind}={name!r}: its plugin {ep.value} failed to load: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:300]}; fix or reinstall the package that provides it") \
            from None


def build_plugin(group: str, name: str, *args: Any, kind: str, built_in: Sequence[str], base: type,
                 hint: str) -> Any:
    """The part the plugin `name` of `group` builds from `args`: one line when it is unknown, when building it
    raises, or when it is not a `base` (`hint` says what its entry point must name)."""
    plugin = load_plugin(group, name, kind=kind, built_in=built_in)
    try:
        part = plugin(*args)
    except EvolveError:
        raise
    except Exception as exc:
        raise ConfigError(f"{kind}={name!r}: building the plugin raised {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:300]}") from exc
    if not isinstance(part, base):
        raise ConfigError(f"{kind}={name!r}: the plugin gave a {type(part).__name__}, not a {base.__name__}; "
                          f"its entry point must name {hint}")
    return part
