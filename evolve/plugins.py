"""Third-party parts found through entry points (`importlib.metadata`), by group and name.

`EVOLVE_DISABLE_PLUGINS=1` turns discovery off: only the built-in parts are then known.
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any, Sequence

from evolve.errors import ConfigError

__all__ = ["DISABLE_VARIABLE", "installed", "load_plugin"]

DISABLE_VARIABLE = "EVOLVE_DISABLE_PLUGINS"


def installed(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    """The entry points of `group` by name (none while discovery is turned off)."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return {}
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=group)}


def load_plugin(group: str, name: str, *, kind: str, built_in: Sequence[str] = ()) -> Any:
    """What the entry point `name` of `group` points to; one line naming the choices when there is none."""
    found = installed(group)
    ep = found.get(name)
    if ep is None:
        plugins = f"; installed plugins ({group}): {', '.join(sorted(found))}" if found else ""
        raise ConfigError(f"{kind}={name!r} is not known; use one of {', '.join(built_in)}{plugins}")
    try:
        return ep.load()
    except Exception as exc:  # noqa: BLE001 (a plugin's import may fail in any way: say which plugin in one line)
        raise ConfigError(f"{kind}={name!r}: its plugin {ep.value} failed to load: {type(exc).__name__}: {exc}") \
            from None
