"""The root filesystem of a sandbox image that brings its own interpreter (`sandbox.interpreter: image`).

Assembled from this machine's files, no registry: the interpreter and its standard library (without its
tests and its own site-packages), the named packages, and the shared libraries all of them load (found
with `ldd`), each at its path here, every symlink on the way kept. Labels record what a worker on any
node needs to run it: the interpreter's path, the import roots and the packages inside.
"""

from __future__ import annotations

import ctypes.util
import fnmatch
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterable
from pathlib import Path

from sandboxes.view import import_roots, package_paths

__all__ = ["LABEL_PACKAGES", "LABEL_PATH", "LABEL_PYTHON", "stdlib_module", "write_rootfs"]

LABEL_PYTHON, LABEL_PATH, LABEL_PACKAGES = "evolve.python", "evolve.path", "evolve.packages"
_PACKAGES = "/evolve-packages"  # where the packages' import roots go in the image
_STDLIB_SKIP = ("site-packages", "dist-packages", "test", "tests", "idle_test", "config-*", "ensurepip", "idlelib",
                "tkinter", "turtledemo", "_tkinter*", "_test*")  # nothing a candidate imports, or the packages
_FOLDERS = {"tmp": 0o1777, "proc": 0o755, "dev": 0o755, "sys": 0o755, "etc": 0o755, "root": 0o755,
            "evolve-sandbox": 0o755, "evolve-control": 0o755}
_TOOLS = ("/etc/ld.so.cache", "/sbin/ldconfig")  # how ctypes.util.find_library finds libseccomp and libc


def stdlib_module(name: str) -> bool:
    """True when `name` is part of the interpreter (built in or in its standard library)."""
    return name in sys.stdlib_module_names


def _libraries(files: list[str]) -> set[str]:
    """The shared libraries (and the loader) that `files` load, as `ldd` resolves them here."""
    found: set[str] = set()
    for start in range(0, len(files), 200):
        out = subprocess.run(["ldd", *files[start:start + 200]], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            words = line.split()
            if "=>" in words and len(words) > words.index("=>") + 1 and words[words.index("=>") + 1].startswith("/"):
                found.add(os.path.normpath(words[words.index("=>") + 1]))  # $ORIGIN/../x: one name per file
            elif words and words[0].startswith("/") and not words[0].endswith(":"):
                found.add(os.path.normpath(words[0]))  # the loader itself
    return found


def _add_resolved(tar: tarfile.TarFile, path: str, added: set[str]) -> None:
    """Add `path` as this machine resolves it: each symlink on the way as a symlink, then what it names."""
    parts = Path(path).parts
    current = os.sep
    for i, part in enumerate(parts[1:], 1):
        current = os.path.join(current, part)
        if os.path.islink(current):
            if current not in added:
                added.add(current)
                tar.add(current, arcname=current.lstrip(os.sep), recursive=False)
            target = os.path.join(os.path.dirname(current), os.readlink(current))
            _add_resolved(tar, os.path.normpath(os.path.join(target, *parts[i + 1:])), added)
            return
    if current not in added and os.path.exists(current):
        added.add(current)
        tar.add(current, arcname=current.lstrip(os.sep), recursive=False)


def _tree(tar: tarfile.TarFile, root: str, added: set[str], skip: tuple[str, ...] = (),
          inside: str | None = None) -> list[str]:
    """Add the tree at `root` (real path; at `inside` in the image, else at the same path) but the names
    matching `skip`; returns its shared objects' paths on this machine."""
    objects = []
    arcroot = (inside or root).lstrip(os.sep)

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = os.path.basename(info.name)
        if any(fnmatch.fnmatch(name, pattern) for pattern in skip):
            return None
        host = root + info.name[len(arcroot):]
        if info.isfile() and (name.endswith(".so") or ".so." in name):
            objects.append(host)
        added.add(host)  # a library `ldd` finds here again is in already
        return info

    tar.add(root, arcname=arcroot, filter=keep)
    return objects


def write_rootfs(tar: tarfile.TarFile, packages: Iterable[str]) -> dict[str, str]:
    """Write the image's files into `tar`: this interpreter, its standard library, `packages` (top-level
    import names, with pyseccomp, which the fork server needs) and the libraries they load; return the
    image's labels. Raises ValueError naming a package that is not installed here."""
    names = list(dict.fromkeys([*packages, "pyseccomp"]))
    for folder, mode in _FOLDERS.items():
        info = tarfile.TarInfo(folder)
        info.type, info.mode = tarfile.DIRTYPE, mode
        tar.addfile(info)
    added: set[str] = set()
    python = os.path.realpath(sys.executable)
    _add_resolved(tar, python, added)
    objects = [python, *_tree(tar, os.path.realpath(sysconfig.get_paths()["stdlib"]), added, _STDLIB_SKIP)]
    paths: list[str] = []
    for name in names:
        if stdlib_module(name):
            continue
        found = package_paths(name)
        if not found:
            raise ValueError(f"package {name!r} is not installed for {sys.executable}; install it or leave it out")
        paths += [os.path.realpath(path) for path in found]
    # each import root at a path of its own: one under /tmp here (a checkout there) would be hidden by the
    # container's /tmp, and the image need not repeat this machine's layout
    # the nearest import root of each path (the repository's folder on sys.path may hold a virtualenv)
    nearest = {path: max((r for r in import_roots(paths) if path.startswith(r + os.sep)), key=len) for path in paths}
    roots = list(dict.fromkeys(nearest.values()))
    inside = {root: f"{_PACKAGES}/{i}" for i, root in enumerate(roots)}
    for folder in (_PACKAGES, *inside.values()):  # made explicitly: implied ones are root-only (0700)
        info = tarfile.TarInfo(folder.lstrip(os.sep))
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    for path in paths:
        root = nearest[path]
        where = inside[root] + path[len(root):]
        if os.path.isdir(path):
            objects += _tree(tar, path, added, inside=where)
        else:
            tar.add(path, arcname=where.lstrip(os.sep), recursive=False)
    seccomp = ctypes.util.find_library("seccomp")  # pyseccomp loads it by name: not an import, so not in ldd's view
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    loaded = [os.path.join(folder, seccomp) for folder in (f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib64",
                                                          "/usr/lib64", "/lib", "/usr/lib")
              if seccomp and os.path.exists(os.path.join(folder, seccomp))][:1]
    for path in sorted(_libraries(objects + loaded) | set(loaded) | set(_TOOLS)):
        _add_resolved(tar, path, added)
    return {LABEL_PYTHON: python, LABEL_PATH: json.dumps([inside[root] for root in roots]),
            LABEL_PACKAGES: json.dumps(sorted(names))}
