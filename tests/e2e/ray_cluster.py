"""A real Ray cluster on this machine for tests: a head and worker nodes started with `ray start`.

Each node is its own raylet with its own CPUs. The cluster keeps to itself: a private temp dir (so
`ray_current_cluster` and the session files never meet the test session's Ray or a user's cluster),
free ports, and an authentication token of its own; `env` is what a driver needs to join it
(`ray.address=auto` reads RAY_ADDRESS). Everything is killed on exit, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
_READY = "This command will now block forever"  # what `ray start --block` prints once its node is up
_SLOW = "timed out during startup"  # Ray gives a raylet 30 s to register, too few on a loaded machine


def _free_port() -> int:
    """A TCP port no one listens on now."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One `ray start --block` process (its own session: the node's raylet and agents descend from it)."""

    name: str
    process: subprocess.Popen
    log: Path
    node_id: str = ""

    def log_tail(self) -> str:
        """The end of the node's `ray start` output."""
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"


class LocalCluster:
    """`workers` worker nodes and a head, `cpus` CPUs each; `kill(node)` takes a node down as a crash would."""

    def __init__(self, workers: int = 2, cpus: int = 1, start_timeout: float = 300.0) -> None:
        self.dir = tempfile.mkdtemp(prefix="evr-", dir="/tmp")  # short: Ray's socket paths live under it
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {"RAY_ADDRESS": self.address, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_TMPDIR": self.dir, "RAY_USAGE_STATS_ENABLED": "0"}
        self.nodes: list[Node] = []
        self._workers, self._cpus, self._timeout = workers, cpus, start_timeout

    def __enter__(self) -> Self:
        try:
            self._start("head")
            for n in range(self._workers):
                self._start(f"worker{n + 1}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, name: str, attempts: int = 3) -> None:
        """Start a node and wait until its raylet is registered; a start that Ray itself timed out is
        cleared away and tried again."""
        for attempt in range(1, attempts + 1):
            node = self._launch(name)
            try:
                self._wait(node)
                return
            except RuntimeError:
                self.kill(node)
                self.nodes.remove(node)
                if _SLOW not in node.log_tail() or attempt == attempts:
                    raise

    def _launch(self, name: str) -> Node:
        """Start `ray start --block` for the node `name` in a session of its own."""
        head = name == "head"
        args = [RAY, "start", "--block", "--num-cpus", str(self._cpus), "--node-ip-address", "127.0.0.1",
                "--temp-dir", self.dir, "--object-store-memory", str(128 * 2**20), "--disable-usage-stats",
                "--node-manager-port", str(_free_port()), "--object-manager-port", str(_free_port()),
                "--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port", str(_free_port()),
                "--metrics-export-port", str(_free_port()), "--runtime-env-agent-port", str(_free_port())]
        if head:
            args += ["--head", "--port", str(self.port), "--include-dashboard=false",
                     "--ray-client-server-port", str(_free_port()), "--dashboard-port", str(_free_port())]
        else:
            args += ["--address", self.address]
        log = Path(self.dir) / f"{name}.log"
        with open(log, "w") as out:
            process = subprocess.Popen(args, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        node = Node(name, process, log)
        self.nodes.append(node)
        return node

    def _wait(self, node: Node) -> None:
        """Wait until the node is up and its raylet's node id is known; RuntimeError with its log if not."""
        deadline = time.monotonic() + self._timeout
        while not node.node_id:
            if node.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start of {node.name} did not come up:\n{node.log_tail()}")
            if _READY in node.log.read_text(errors="replace"):
                node.node_id = self._raylet_node_id(node.process.pid)
            time.sleep(0.5)

    @staticmethod
    def _raylet_node_id(pid: int) -> str:
        """The node id on the command line of the raylet below `ray start` (pid)."""
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                for arg in child.cmdline():
                    if arg.startswith("--node_id="):
                        return arg.split("=", 1)[1]
        return ""

    @staticmethod
    def _members(node: Node) -> list[int]:
        """The processes the node's `ray start` began: its descendants and what is left in its session (Ray's
        workers have process groups of their own; an orphan's parent is gone). While a process holds that
        session id the kernel never hands its number to another process."""
        pid, found = node.process.pid, set()
        if node.process.poll() is None:
            found.add(pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                found |= {p.pid for p in psutil.Process(pid).children(recursive=True)}
        for process in psutil.process_iter():
            with contextlib.suppress(OSError):
                if process.pid != pid and os.getsid(process.pid) == pid:
                    found.add(process.pid)
        return sorted(found)

    def kill(self, node: Node) -> list[int]:
        """SIGKILL the node's `ray start`, its raylet, agents and workers (all of them gathered first);
        returns their pids."""
        members = self._members(node)
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.process.wait(timeout=60)
        return members

    def close(self) -> None:
        """Kill every node, then remove the temp dir."""
        for node in reversed(self.nodes):
            if node.process.poll() is None:
                self.kill(node)
        shutil.rmtree(self.dir, ignore_errors=True)
