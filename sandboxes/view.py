"""What a candidate may see of the filesystem: an allow-list, everything else is gone from its view."""

from __future__ import annotations

import importlib.util
import os
import site
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SYSTEM", "default_view", "import_roots", "package_paths"]

SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/localtime")
"""The system's programs and shared libraries (read-only), and the loader's cache."""


def package_paths(name: str) -> list[str]:
    """Where the top-level package (or module) `name` is installed, with its vendored libraries
    (`numpy.libs`, say); empty when it is not installed."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        paths = [str(Path(p)) for p in spec.submodule_search_locations]
    elif spec.origin and os.path.isabs(spec.origin):
        paths = [spec.origin]
    else:
        return []  # built in: part of the interpreter
    parent = Path(paths[0]).parent
    return paths + [str(p) for p in (parent / f"{name}.libs", parent / f"{name}_libs") if p.is_dir()]


def default_view(packages: Iterable[str] | None = None) -> list[str]:
    """The system's libraries, the interpreter with its standard library, and `packages` (top-level
    import names) from wherever they are installed; None shows every installed package instead."""
    paths = [*SYSTEM, sys.base_prefix]
    if packages is None:
        return paths + [p for p in site.getsitepackages() if os.path.isdir(p)]
    for name in packages:
        paths += package_paths(name)
    return paths


def import_roots(allowed: Iterable[str]) -> list[str]:
    """The entries of this interpreter's `sys.path` that hold an allowed path: what a sandboxed
    interpreter needs on its own path to import the allowed packages."""
    allowed = [os.path.realpath(p) for p in allowed]
    roots = []
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if real and real not in roots and any(p.startswith(real + "/") for p in allowed):
            roots.append(real)
    return roots
