"""Real parts for database faults: a PostgreSQL cluster of a test's own, and a TCP proxy that drops a connection.

`PrivateCluster` is a throwaway cluster (initdb in a temp dir, a free port on 127.0.0.1, trust auth) that a
test may stop and start as a restart would, never the shared server of scripts/postgres.sh. `DroppingProxy`
forwards a client's connection to a server and, once armed, lets the next COMMIT reach the server, waits
for its answer and closes the connection without passing it on: the client cannot tell whether it committed.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest


def _bin() -> Path | None:
    """The newest installed PostgreSQL's bin dir (Debian's layout, as scripts/postgres.sh installs it)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if
                   p.parent.name.isdigit() else 0)
    return found[-1] if found and (found[-1] / "pg_ctl").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateCluster:
    """A PostgreSQL cluster for one test module; `stop()` and `start()` as a restart would."""

    def __init__(self) -> None:
        self.bin = _bin()
        if self.bin is None:
            pytest.skip("PostgreSQL is not installed (bash scripts/postgres.sh installs Debian's)")
        self.root = os.getuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="evolve-pg-fault-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if self.root:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            log = (self.dir / "server.log").read_text()[-2000:] if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stderr[-2000:]}\n{log}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "300", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c synchronous_commit=off "
                  "-c full_page_writes=off", "start")

    def stop(self) -> None:
        """Stop the server as an administrator's restart does: every connection is ended."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "300", "stop")

    def database(self) -> str:
        """A new, empty database on the cluster: its URL."""
        from sqlalchemy import create_engine, text

        name = f"evolve_{uuid.uuid4().hex[:10]}"
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)

    def url(self, database: str, port: int | None = None) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port or self.port}/{database}"

    def close(self) -> None:
        """Stop the server (if it runs) and remove its files."""
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class DroppingProxy:
    """127.0.0.1:`port` forwarded to `target`; `arm()` makes it drop the connection that sends the next COMMIT,
    after the server has answered it (the answer is never passed on). `dropped` counts the drops."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed = threading.Event()
        self.dropped = 0
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        self._armed.set()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        dropping = False
        try:
            while True:
                ready, _, _ = select.select([client, server], [], [])
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    if self._armed.is_set() and b"COMMIT\x00" in data:
                        self._armed.clear()
                        dropping = True
                    server.sendall(data)
                if server in ready or dropping:
                    data = server.recv(65536)
                    if not data:
                        return
                    if dropping:  # the server committed and said so: the client never hears it
                        self.dropped += 1
                        return
                    client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self._closing = True
        self._listener.close()
