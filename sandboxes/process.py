"""The process backend: a fork server per worker, one namespaced, locked-down child per session.

The zygote is started by exec of a clean interpreter (`python -I`), never by a bare fork of the caller
(a Ray worker holds control channels), with an empty environment; in its own mount namespace it
switches to a new root holding only the paths it is allowed, so every session inherits that view.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path

from sandboxes.forkserver import THREAD_CAPS, ForkServerSandbox
from sandboxes.view import default_view

__all__ = ["ProcessSandbox"]


class ProcessSandbox(ForkServerSandbox):
    """The default backend: a fork server per worker, one fresh namespaced child per session.

    The zygote is started once by exec of a clean interpreter and pre-imports `preload`; each session
    is a fork of it in new PID, mount, network, IPC and UTS namespaces, seeing only the `allow`ed paths
    (default `sandboxes.view.default_view()`) read-only, its own /proc and a size-capped tmpfs scratch
    dir, in a cgroup of its own, with rlimits, an unprivileged uid of its own (`user`: null runs as the caller),
    no_new_privs, Landlock and an allow-list seccomp filter.
    Thread-safe; about 10 ms per session.
    """

    def __init__(self, user: str | None = "nobody", network_isolation: bool = True,
                 preload: tuple[str, ...] = ("numpy",), scratch_mb: int = 64, allow: list[str] | None = None,
                 python: str | None = None, scratch_inodes: int = 4096, cgroups: bool = True) -> None:
        super().__init__(user, network_isolation, preload, scratch_mb, scratch_inodes, cgroups)
        self._python = python or sys.executable
        self._allow = list(allow) if allow is not None else default_view()
        self._zygote: subprocess.Popen | None = None
        self._socket: socket.socket | None = None

    def _control(self) -> socket.socket:
        if self._zygote is not None and self._zygote.poll() is None:
            return self._socket
        if self._socket is not None:
            self._socket.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = json.dumps({"preload": list(self._preload), "allow": self._allow,
                             "cgroup_parents": [str(p) for p in self._cgroups.parents.values()]})
        self._zygote = subprocess.Popen(
            [self._python, "-I", str(Path(__file__).with_name("_zygote.py")), str(theirs.fileno()), config],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(THREAD_CAPS),
            pass_fds=(theirs.fileno(),), close_fds=True, start_new_session=True, cwd="/",
        )
        theirs.close()
        self._socket = ours
        self._range_key = self._zygote.pid
        return ours

    @property
    def server_pid(self) -> int | None:
        """The zygote's pid (every session is a descendant of it), or None before the first session."""
        return self._zygote.pid if self._zygote is not None and self._zygote.poll() is None else None

    def close(self) -> None:
        """Stop the zygote."""
        super().close()
        if self._zygote is not None:
            with contextlib.suppress(ProcessLookupError):
                self._zygote.kill()
            self._zygote.wait()
            self._zygote = None
