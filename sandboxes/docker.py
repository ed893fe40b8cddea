"""The Docker backend: one warm container per worker running the same fork server as `sandbox=process`.

The container is the outer boundary: `--network none`, a read-only root (an empty image; the interpreter
and its packages are bound in read-only, nothing of the host is bound writable), memory, pids and CPU
limits, every capability dropped but the four the fork server needs to set a session up (SETUID, SETGID,
KILL, SYS_ADMIN; candidates run under a uid of their own with none), no-new-privileges. Inside it each
session gets its own PID, mount, IPC, UTS and network namespaces as on the process backend, with a fresh
/proc, /tmp, /dev/shm and /dev/mqueue: nothing carries from one session to the next, and the fork server
is out of a candidate's sight. An engine that refuses that (no SYS_ADMIN, a seccomp or AppArmor profile
that forbids unshare or mount) is named in one line at start (`SandboxUnavailable`). The zygote is the
container's PID 1; per session the worker passes the pipes over a Unix socket in a directory bound
read-only, exactly as for the process backend, plus a kill pipe: the worker cannot signal container
processes, so the session's leader kills its PID 1.
Images are built locally (`evolve sandbox build`): no registry is needed. With `interpreter="image"` the
image brings the interpreter, its packages and libraries itself (`evolve sandbox build --interpreter`,
`sandboxes.image`), so a node runs it whatever its own paths; only declared data is bound in.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import socket
import struct
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sandboxes.cgroups import SessionCgroup, cpu_usage_file, read_cpu_seconds
from sandboxes.errors import CandidateCrash, SandboxUnavailable
from sandboxes.forkserver import THREAD_CAPS, ForkHandle, ForkServerSandbox, recv_exact
from sandboxes.image import LABEL_PACKAGES, LABEL_PATH, LABEL_PYTHON, stdlib_module, write_rootfs
from sandboxes.limits import SandboxLimits
from sandboxes.view import default_view, import_roots, package_paths

__all__ = ["DEFAULT_IMAGE", "PYTHON_IMAGE", "DockerSandbox", "build_image"]

DEFAULT_IMAGE = "evolve-sandbox:local"
PYTHON_IMAGE = "evolve-sandbox:python"  # `evolve sandbox build --interpreter`: the interpreter inside
_HERE = str(Path(__file__).parent)
_SYSTEM = ("/usr", "/lib", "/lib64", "/bin", "/sbin")
_START_TIMEOUT = 60.0


def build_image(name: str = DEFAULT_IMAGE, client=None, packages: Iterable[str] | None = None) -> str:
    """Import an empty root filesystem as `name` (no registry, no network); returns its id. With
    `packages`, the image holds this interpreter and those packages instead (see `sandboxes.image`)."""
    import docker

    client = client or docker.from_env()
    repository, _, tag = name.partition(":")
    if packages is not None:
        with tempfile.NamedTemporaryFile(suffix=".tar") as file:
            with tarfile.open(fileobj=file, mode="w") as tar:
                labels = write_rootfs(tar, packages)
            file.flush()
            previous = None
            with contextlib.suppress(docker.errors.ImageNotFound):
                previous = client.images.get(name).id
            changes = [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()]
            client.api.import_image_from_file(file.name, repository=repository, tag=tag or "latest", changes=changes)
        image_id = client.images.get(name).id
        if previous not in (None, image_id):  # a rebuild: drop the old one unless a container holds it
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(previous)
        return image_id
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for folder in ("tmp", "proc", "dev", "sys", "etc", "root", "evolve-sandbox", "evolve-control"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
    client.api.import_image_from_data(data.getvalue(), repository=repository, tag=tag or "latest")
    return client.images.get(name).id


class _ContainerHandle(ForkHandle):
    """A session inside the container: killed through its leader, by a byte on the kill pipe."""

    def __init__(self, leader: int, inner: int, status_fd: int, kill_fd: int) -> None:
        super().__init__(leader, inner, status_fd)
        self._kill_fd = kill_fd

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._kill_fd, b"k")

    def _kill_everything(self) -> None:
        self.kill()  # container pids mean nothing on the host: never signal them from here

    def release(self) -> None:
        # the leader ends once its namespace is reaped: wait for that (EOF on the status pipe), so that the
        # next session has the container's memory and pids to itself
        deadline = time.monotonic() + 5
        while self._status >= 0 and time.monotonic() < deadline:
            ready, _, _ = select.select([self._status], [], [], max(0.0, deadline - time.monotonic()))
            if ready and not os.read(self._status, 64):
                break
        super().release()
        if self._kill_fd >= 0:
            os.close(self._kill_fd)
            self._kill_fd = -1


class DockerSandbox(ForkServerSandbox):
    """Candidates in a warm container per worker (see the module docstring). Thread-safe."""

    _kill_pipe = True
    _spares = False  # one session at a time per container: its CPU time is the container's
    _processes_capped = True  # the container's pids limit, one session at a time per container
    # what the fork server needs to set a session up: switch uid, kill the session, unshare and mount
    _capabilities = ("SETUID", "SETGID", "KILL", "SYS_ADMIN")

    def __init__(self, image: str = DEFAULT_IMAGE, user: str | None = "nobody", network_isolation: bool = True,
                 preload: tuple[str, ...] = ("numpy",), scratch_mb: int = 64, scratch_inodes: int = 4096,
                 memory_mb: int = 4096, pids: int = 512, cpus: float = 1.0, allow: list[str] | None = None,
                 interpreter: str = "host", packages: Iterable[str] = (), client=None) -> None:
        super().__init__(None, network_isolation, preload, scratch_mb, scratch_inodes)
        if interpreter not in ("host", "image"):
            raise ValueError(f"interpreter={interpreter!r}: use 'host' (bind this machine's) or 'image' (the image's)")
        # "image": `allow` is only what the image lacks (declared data); `packages` must be inside it
        self._interpreter, self._packages = interpreter, tuple(packages)
        self._allow = list(allow) if allow is not None else default_view() if interpreter == "host" else []
        self._switch = bool(user)  # root inside the container, whoever runs evolve here
        self.image, self._memory_mb, self._pids, self._cpus = image, memory_mb, pids, cpus
        self._client = client
        self._container = None
        self._socket: socket.socket | None = None
        self._dir: str | None = None
        self._usage: Path | None = None  # the container's CPU time counter on the host
        self._fitted: int | None = None  # the session memory limit the container is capped to

    def _docker(self):
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env()
                self._client.ping()
            except docker.errors.DockerException as exc:
                raise SandboxUnavailable(f"sandbox=docker needs a running Docker engine ({exc}); start dockerd, "
                                  "or use sandbox=process") from None
        return self._client

    def _control(self) -> socket.socket:
        if self._container is not None and self._socket is not None:
            return self._socket
        import docker

        client = self._docker()
        try:
            image = client.images.get(self.image)
        except docker.errors.ImageNotFound:
            build = "evolve sandbox build" + (f" --interpreter --image {self.image}"
                                              if self._interpreter == "image" else "")
            raise SandboxUnavailable(f"sandbox.image={self.image!r} is not on this machine; build it with "
                              f"`{build}`") from None
        python, path, volumes = self._interpreter_of(image.labels or {}) if self._interpreter == "image" \
            else self._host_interpreter()
        self._dir = tempfile.mkdtemp(prefix="evolve-docker-")
        os.chmod(self._dir, 0o755)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.path.join(self._dir, "control.sock"))
        listener.listen(1)
        listener.settimeout(_START_TIMEOUT)
        volumes[_HERE] = {"bind": "/evolve-sandbox", "mode": "ro"}
        volumes[self._dir] = {"bind": "/evolve-control", "mode": "ro"}  # connect() needs no write access
        config = json.dumps({"container": True, "preload": list(self._preload), "path": path,
                             "network_isolation": self._network_isolation, "view": self._view()})
        self._container = client.containers.run(
            self.image, [python, "-I", "/evolve-sandbox/_zygote.py", "/evolve-control/control.sock", config],
            detach=True, auto_remove=True, network_mode="none" if self._network_isolation else "bridge",
            read_only=True, tmpfs={"/tmp": f"size={self._scratch_mb}m,nr_inodes={self._scratch_inodes},mode=1777"},
            mem_limit=f"{self._memory_mb}m",
            pids_limit=self._pids, nano_cpus=int(self._cpus * 1e9), cap_drop=["ALL"], cap_add=list(self._capabilities),
            security_opt=["no-new-privileges"], user="0:0",
            environment=dict(THREAD_CAPS), volumes=volumes, working_dir="/tmp", labels={"evolve": "sandbox"},
        )
        try:
            self._socket, _ = listener.accept()
        except TimeoutError:
            with contextlib.suppress(Exception):
                logs = self._container.logs(tail=5).decode(errors="replace")
            logs = locals().get("logs", "the container exited")
            self.close()
            raise SandboxUnavailable(f"the sandbox container did not start its fork server: "
                                     f"{logs.strip()[-300:]}") from None
        finally:
            listener.close()
        self._hello()
        return self._socket

    def _hello(self) -> None:
        """Read the fork server's first word: whether sessions can have their own namespaces in this engine."""
        try:
            self._socket.settimeout(_START_TIMEOUT)
            (length,) = struct.unpack(">I", recv_exact(self._socket, 4))
            hello = json.loads(recv_exact(self._socket, length))
        except (OSError, ValueError, CandidateCrash) as exc:
            self.close()
            raise SandboxUnavailable(f"the sandbox container's fork server did not say it was ready ({exc})") from None
        finally:
            if self._socket is not None:
                self._socket.settimeout(None)
        if not hello.get("ok"):
            self.close()
            raise SandboxUnavailable(
                f"sandbox=docker: this Docker engine cannot give each session its own namespaces: "
                f"{hello.get('refused')}; it needs capability SYS_ADMIN in the container with a seccomp and AppArmor "
                "profile that allow unshare and mount (not rootless, no userns-remap); use sandbox=process") from None
        self._range_key = self.server_pid or 0
    def _host_interpreter(self) -> tuple[str, list[str], dict]:
        """This machine's interpreter, its import roots, and the read-only binds that show only the
        allowed paths (system dirs keep their names: on merged-/usr systems /lib is a link to /usr/lib)."""
        volumes = {p: {"bind": p, "mode": "ro"} for p in _SYSTEM if os.path.isdir(p)}
        if os.path.isfile("/etc/ld.so.cache"):  # how ctypes finds shared libraries (libseccomp)
            volumes["/etc/ld.so.cache"] = {"bind": "/etc/ld.so.cache", "mode": "ro"}
        allow = self._allow + package_paths("pyseccomp")  # the fork server's own filter compiler
        for path in sorted({os.path.realpath(p) for p in allow if os.path.exists(p)}):  # only these
            if not any(path == q or path.startswith(q + "/") for q in volumes):
                volumes[path] = {"bind": path, "mode": "ro"}
        # the real interpreter, not a virtualenv's link to it: the allowed packages come through "path"
        return os.path.realpath(sys.executable), import_roots(allow), volumes

    def _interpreter_of(self, labels: dict[str, str]) -> tuple[str, list[str], dict]:
        """The image's interpreter and import roots (its labels), and binds of `allow` only (declared data)."""
        if LABEL_PYTHON not in labels:
            raise SandboxUnavailable(f"sandbox.image={self.image!r} holds no interpreter, but sandbox.interpreter="
                                     f"image; build one with `evolve sandbox build --interpreter --image {self.image}`")
        inside = json.loads(labels.get(LABEL_PACKAGES, "[]"))
        missing = [p for p in self._packages if p not in inside and not stdlib_module(p)]
        if missing:
            raise SandboxUnavailable(f"sandbox.image={self.image!r} lacks the packages {', '.join(missing)} (it holds "
                                     f"{', '.join(inside)}); rebuild it with `evolve sandbox build --interpreter "
                                     f"--image {self.image} --packages {' '.join(sorted(set(inside) | set(missing)))}`")
        volumes = {p: {"bind": p, "mode": "ro"} for p in sorted({os.path.realpath(q) for q in self._allow
                                                                  if os.path.exists(q)})}
        return labels[LABEL_PYTHON], json.loads(labels.get(LABEL_PATH, "[]")), volumes

    def _view(self) -> str:
        """What the container shows a session, for its layer report."""
        return ("the container's read-only root (the image's own interpreter and packages; only declared data "
                "bound in, read-only)" if self._interpreter == "image" else
                "the container's read-only root (an empty image, the interpreter and allowed paths bound read-only)")

    def _layers(self) -> dict[str, str]:
        net = "--network none" if self._network_isolation else "bridge network"
        return {
            "container": f"{net}; memory {self._memory_mb} MiB, {self._pids} pids, {self._cpus:g} CPUs; the fork "
                         f"server keeps {len(self._capabilities)} capabilities ({', '.join(self._capabilities)}) to "
                         "set sessions up, candidates none; no-new-privileges; nothing of the host writable",
        }

    def _setup(self) -> dict:
        return {"scratch": "/tmp", "container_layers": self._layers(),
                "cgroup_layer": "the container's: one session at a time, its memory capped to the session's "
                                "memory_mb, its processes to sandbox.pids, its CPU time read outside"}

    def _fit(self, limits: SandboxLimits) -> None:
        """Cap the container's memory to this session's (updated only when it changes); its pids limit
        (`pids`) caps the one session it runs at a time."""
        if self._fitted != limits.memory_mb and self._container is not None:
            memory = f"{min(limits.memory_mb, self._memory_mb)}m"
            self._container.update(mem_limit=memory, memswap_limit=memory)
            self._fitted = limits.memory_mb

    def _handle(self, leader: int, inner: int, status_fd: int, kill_fd: int | None):
        return _ContainerHandle(leader, inner, status_fd, kill_fd)

    @property
    def server_pid(self) -> int | None:
        """The host pid of the container's zygote (every session descends from it), or None."""
        if self._container is None:
            return None
        try:
            self._container.reload()
        except Exception:  # noqa: BLE001 (the docker SDK's NotFound: the container is gone)
            return None
        return self._container.attrs["State"]["Pid"] or None

    def _cpu_clock(self, inner: int, cgroup: SessionCgroup | None) -> Callable[[], float] | None:
        """The container's CPU time: its sessions run one at a time, and its fork server idles."""
        if self._usage is None and self.server_pid is not None:
            self._usage = cpu_usage_file(self.server_pid)
        usage = self._usage
        return (lambda: read_cpu_seconds(usage)) if usage is not None else None

    def close(self) -> None:
        """Stop the container."""
        super().close()
        self._usage = None
        self._fitted = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.kill()
            self._container = None
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
