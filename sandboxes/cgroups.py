"""Per-session control groups: one memory limit and one process limit for everything a session starts,
and its CPU time read from outside the sandbox.

Both hierarchies are supported. cgroup v2 (one tree, `memory.max`, `pids.max`, `cpu.stat`) where this
process's cgroup can delegate the memory and pids controllers to children; cgroup v1 (a tree per
controller: `memory`, `pids`, `cpuacct`) otherwise. Sessions are created as children of this process's
own cgroup, so whatever limits the host set on us still apply. Only root (or a delegated subtree) can
create them; `CgroupSupport.probe()` says what is available and why not.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupSupport", "CpuCounter", "SessionCgroup", "cpu_usage_file"]

_ROOT = Path("/sys/fs/cgroup")
_V1 = ("memory", "pids", "cpuacct")


def _mounts() -> dict[str, Path]:
    """cgroup mounts by controller (`unified` for the v2 tree)."""
    found: dict[str, Path] = {}
    with contextlib.suppress(OSError), open("/proc/self/mounts") as f:
        for line in f:
            _, where, kind, options = line.split()[:4]
            if kind == "cgroup2":
                found.setdefault("unified", Path(where))
            elif kind == "cgroup":
                for option in options.split(","):
                    if option in _V1 or option == "cpu":
                        found.setdefault(option, Path(where))
    return found


def _own_paths(pid: str = "self") -> dict[str, str]:
    """This process's cgroup path per controller (`unified` for v2)."""
    paths: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else ["unified"]:
                paths[controller] = path
    return paths


def cpu_usage_file(pid: int) -> Path | None:
    """The file that counts the CPU time of `pid`'s cgroup (a container's, say), or None."""
    try:
        mounts, paths = _mounts(), _own_paths(str(pid))
    except OSError:
        return None
    if "cpuacct" in mounts and "cpuacct" in paths:
        return mounts["cpuacct"] / paths["cpuacct"].lstrip("/") / "cpuacct.usage"
    if "unified" in mounts and "unified" in paths:
        candidate = mounts["unified"] / paths["unified"].lstrip("/") / "cpu.stat"
        return candidate if candidate.is_file() else None
    return None


def read_cpu_seconds(path: Path) -> float:
    """CPU seconds counted in `cpuacct.usage` (nanoseconds) or `cpu.stat` (usage_usec)."""
    fd = os.open(path, os.O_RDONLY)  # not read_text: read once per batch of calls, its overhead shows
    try:
        return _parse_cpu(os.read(fd, 65536), path.name == "cpu.stat")
    finally:
        os.close(fd)


def _parse_cpu(data: bytes, stat: bool) -> float:
    if not stat:
        return int(data) / 1e9
    if data.startswith(b"usage_usec "):  # the kernel's first line
        return int(data[11:data.index(b"\n")]) / 1e6
    fields = dict(line.split() for line in data.decode().splitlines() if line)
    return int(fields["usage_usec"]) / 1e6


class CpuCounter:
    """A cgroup's CPU counter (`cpuacct.usage` or `cpu.stat`) read through one descriptor kept open: a reading
    is one pread (the kernel writes the file anew at offset 0), not an open, a read and a close, since it is
    read twice per batch of calls. Calling it returns CPU seconds; OSError once closed or the cgroup is gone."""

    def __init__(self, path: Path) -> None:
        self._stat = path.name == "cpu.stat"
        self._fd = os.open(path, os.O_RDONLY)

    def __call__(self) -> float:
        if self._fd < 0:
            raise OSError("the CPU counter is closed")
        return _parse_cpu(os.pread(self._fd, 65536, 0), self._stat)

    def close(self) -> None:
        """Close the descriptor (a later reading raises OSError, never reads a reused descriptor)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


@dataclass(frozen=True)
class CgroupSupport:
    """Where session cgroups can be made: `version` 2 or 1 with the parent directory of each
    controller, or `version` 0 with `reason` saying why not."""

    version: int
    parents: dict[str, Path]
    reason: str = ""

    @classmethod
    def probe(cls) -> CgroupSupport:
        """Find a hierarchy this process may create session cgroups in."""
        if os.geteuid() != 0:
            return cls(0, {}, "not root: no per-session cgroups (rlimits per process remain)")
        try:
            mounts, own = _mounts(), _own_paths()
        except OSError as exc:
            return cls(0, {}, f"cgroups unreadable ({exc})")
        why_not_v2 = "no cgroup2 mount"
        if "unified" in mounts:
            parent = mounts["unified"] / own.get("unified", "/").lstrip("/") / "evolve-sessions"
            why_not_v2 = cls._prepare_v2(parent)
            if not why_not_v2:
                return cls(2, {"unified": parent})
        if all(c in mounts and c in own for c in _V1):
            parents = {c: mounts[c] / own[c].lstrip("/") / "evolve-sessions" for c in _V1}
            try:
                for path in parents.values():
                    path.mkdir(exist_ok=True)
            except OSError as exc:
                return cls(0, {}, f"cgroup v1 not writable ({exc}); cgroup v2: {why_not_v2}")
            return cls(1, parents)
        return cls(0, {}, f"cgroup v2: {why_not_v2}; cgroup v1: memory, pids and cpuacct are not all mounted")

    @staticmethod
    def _prepare_v2(parent: Path) -> str:
        """Make `parent` a cgroup whose children get memory, pids and cpu; return why not, or ""."""
        own = parent.parent
        try:
            available = (own / "cgroup.controllers").read_text().split()
            if not {"memory", "pids"} <= set(available):
                return f"the memory and pids controllers are not delegated here (only {available or 'none'})"
            wanted = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in available)
            enabled = (own / "cgroup.subtree_control").read_text().split()
            if not {"memory", "pids"} <= set(enabled):  # refused (EBUSY) where this cgroup holds processes
                (own / "cgroup.subtree_control").write_text(wanted)
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text(wanted)
        except OSError as exc:
            return f"cannot delegate controllers ({exc})"
        return ""

    def describe(self) -> str:
        """One line for the layer report."""
        if not self.version:
            return f"NOT active: {self.reason}"
        return (f"cgroup v{self.version}: one per session (memory and processes of everything it starts, "
                "its CPU time measured outside)")

    def session(self, memory_bytes: int, max_pids: int) -> SessionCgroup | None:
        """A fresh cgroup for one session with these limits (None when cgroups are not available)."""
        if not self.version:
            return None
        name = f"s-{os.getpid()}-{secrets.token_hex(4)}"
        dirs = {c: parent / name for c, parent in self.parents.items()}
        try:
            for directory in dirs.values():
                directory.mkdir()
            if self.version == 2:
                d = dirs["unified"]
                (d / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):
                    (d / "memory.swap.max").write_text("0")
                (d / "pids.max").write_text(str(max_pids))
            else:
                (dirs["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):  # swap accounting may be off
                    (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                (dirs["pids"] / "pids.max").write_text(str(max_pids))
        except OSError:
            SessionCgroup(self.version, dirs).remove()
            raise
        return SessionCgroup(self.version, dirs)


@dataclass(frozen=True)
class SessionCgroup:
    """The cgroup of one session: `procs` are the files a process writes "0" to, to join it."""

    version: int
    dirs: dict[str, Path]

    @property
    def procs(self) -> list[str]:
        """The `cgroup.procs` file of each hierarchy."""
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def cpu_seconds(self) -> float:
        """CPU time of everything the session ran, so far."""
        return read_cpu_seconds(self._cpu_file)

    def cpu_counter(self) -> CpuCounter:
        """`cpu_seconds` as a `CpuCounter` (one open descriptor; close it with the session)."""
        return CpuCounter(self._cpu_file)

    @property
    def _cpu_file(self) -> Path:
        return self.dirs["unified"] / "cpu.stat" if self.version == 2 else self.dirs["cpuacct"] / "cpuacct.usage"

    def memory_events(self) -> str:
        """How often the memory limit was hit (for the crash message), or ""."""
        try:
            if self.version == 2:
                text = (self.dirs["unified"] / "memory.events").read_text()
                kills = dict(line.split() for line in text.splitlines()).get("oom_kill", "0")
                return f"{kills} out-of-memory kills" if kills != "0" else ""
            failcnt = (self.dirs["memory"] / "memory.failcnt").read_text().strip()
            return f"memory limit hit {failcnt} times" if failcnt != "0" else ""
        except (OSError, ValueError):
            return ""

    def remove(self, wait: float = 2.0) -> bool:
        """Remove the cgroup once its processes are gone (kill what is left); True when removed."""
        deadline = time.monotonic() + wait
        remaining = list(self.dirs.values())
        while remaining:
            for directory in list(remaining):
                with contextlib.suppress(FileNotFoundError):
                    try:
                        directory.rmdir()
                    except OSError:
                        self._kill(directory)
                        continue
                remaining.remove(directory)
            if not remaining or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return not remaining

    @staticmethod
    def _kill(directory: Path) -> None:
        with contextlib.suppress(OSError):
            if (directory / "cgroup.kill").exists():
                (directory / "cgroup.kill").write_text("1")
                return
            for pid in (directory / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), 9)
