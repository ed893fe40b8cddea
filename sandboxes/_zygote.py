"""The fork server: `python -I _zygote.py SOCKET_FD CONFIG_JSON`, one per evaluation worker.

Started by exec from a clean interpreter with an empty environment, it imports the heavy modules once (numpy,
...) and holds nothing else: no keys, no evaluator, no data. In its own mount namespace it switches once to a
new root that holds only the paths it was allowed (the interpreter, its standard library, the allowed
packages, declared data, a few devices), so sessions inherit that view. For each session the worker sends the
setup and four fds (request pipe, reply pipe, status pipe, output file) over the socket. The zygote forks a
leader that starts a new session and new mount, PID, network, IPC and UTS namespaces and forks again: the
grandchild is PID 1 of its namespace, isolates itself (`_layers`) and serves the candidate (`_runner.serve`).
When it dies the kernel kills everything it started. The leader reports the grandchild's pid, then its wait
status, on the status pipe. Inside a container (`container` in the config) the container's own mounts are
the view; each session still gets its own namespaces there, with a fresh /proc, /tmp, /dev/shm and
/dev/mqueue, and the zygote says at start, in one line, what the engine refuses for that.
"""

import contextlib
import json
import os
import signal
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _layers
import _runner

_MESSAGE = 1 << 20


def _reap(*_):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _isolated(setup, namespaced):
    """Every layer, in order; returns the report."""
    layers = {}
    if namespaced:
        layers["namespaces"] = "new PID (the candidate is PID 1: its processes die with it), IPC and UTS"
        layers["network"] = ("isolated: new empty network namespace" if setup["network_isolation"]
                             else "NOT isolated: sandbox.network_isolation=false")
        layers.update(setup.get("container_layers", {}))
        try:
            mounts = _layers.session_mounts(_SCRATCH, setup["scratch_mb"], setup["uid"], setup["gid"],
                                            setup.get("scratch_inodes", 4096), _SHARED if _CONTAINER else (),
                                            _HIDDEN if _CONTAINER else ())
            layers["filesystem"] = f"{_VIEW}; {mounts}"
            setup["scratch"] = _SCRATCH  # the worker's host dir is not needed: nothing is written there
        except OSError as exc:
            if _CONTAINER:  # the scratch dir would be shared with every later session
                raise
            layers["filesystem"] = f"NOT isolated: {exc}"
    else:
        layers["namespaces"] = "NOT active: unshare refused (needs root or user namespaces)"
        layers["network"] = "NOT isolated: no network namespace"
        layers["filesystem"] = "NOT isolated: no mount namespace"
    os.environ["HOME"] = os.environ["TMPDIR"] = setup["scratch"]
    layers["cgroup"] = setup["cgroup_layer"]
    layers["rlimits"] = _layers.rlimits(setup["limits"], per_user_processes=not setup.get("processes_capped"))
    layers["user"] = _layers.drop_privileges(setup["uid"], setup["gid"])
    os.chdir(setup["scratch"])  # as the session's user: its scratch dir is its own (mode 700)
    for name, layer in (("landlock", lambda: _layers.landlock(setup["scratch"])),
                        ("seccomp", lambda: _layers.seccomp(_SECCOMP))):
        try:
            layers[name] = layer()
        except OSError as exc:
            layers[name] = f"NOT active: {exc}"
    layers["environment"] = "empty but for thread caps and HOME/TMPDIR in the scratch dir"
    return layers


def _session(setup, req_fd, resp_fd, status_fd, out_fd, kill_fd=None):
    """The leader: new session and namespaces, then the grandchild that serves the candidate."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    flags = _layers.CLONE_NEWNS | _layers.CLONE_NEWPID | _layers.CLONE_NEWIPC | _layers.CLONE_NEWUTS
    if setup["network_isolation"]:
        flags |= _layers.CLONE_NEWNET
    try:
        _layers.unshare(flags)
        namespaced = True
    except OSError:
        if _CONTAINER:  # checked at start (`_probe`): a session without its namespaces never runs there
            raise
        namespaced = False
    _layers.become_subreaper()  # the session's orphans come here to be reaped, not to a slow PID 1
    setup["cgroup_layer"] = _join_cgroup(setup)  # before the fork: everything the session starts is in it
    inner = os.fork()
    if inner == 0:
        try:
            _layers.close_inherited([0, 1, 2, req_fd, resp_fd])  # the status and kill pipes stay with the leader
            _layers.oom_first()
            os.environ.clear()
            os.environ.update(setup["env"])
            layers = _isolated(setup, namespaced)
        except BaseException as exc:  # noqa: BLE001 (a layer failed hard: report it as a reply, then stop)
            _runner._send(resp_fd, {"ok": False, "kind": "setup", "error": f"sandbox setup failed: {exc}"})
            os._exit(70)
        _runner.serve(req_fd, resp_fd, layers, setup["limits"].get("max_result_depth", 64))
        os._exit(0)
    os.close(req_fd)
    os.close(resp_fd)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        os.write(status_fd, struct.pack(">i", inner))
        status = _wait_or_kill(inner, kill_fd)
        os.write(status_fd, struct.pack(">i", status))
    except OSError:
        pass  # the worker closed the session without asking how it ended
    while True:  # with PID 1 of the namespace gone, the kernel kills the rest; reap them all
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    os._exit(0)


def _join_cgroup(setup):
    """Put this leader (and so everything it forks) in the session's cgroup; say what that gives."""
    if not setup.get("cgroup"):
        return setup.get("cgroup_layer", "NOT active")
    try:
        for procs in setup["cgroup"]:
            parent = next((p for p in _CGROUP_FDS if procs.startswith(p + "/")), None)
            if parent is None:  # no new root: the path is in view
                fd = os.open(procs, os.O_WRONLY)
            else:  # reached through the directory opened before the root switched
                fd = os.open(procs[len(parent) + 1:], os.O_WRONLY, dir_fd=_CGROUP_FDS[parent])
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
    except OSError as exc:
        return f"NOT active: could not join the session's cgroup ({exc})"
    setup["processes_capped"] = True
    return setup["cgroup_layer"]


def _wait_or_kill(inner, kill_fd):
    """Wait for the candidate's PID 1; a byte (or EOF) on `kill_fd` from the worker kills it first."""
    if kill_fd is None:
        return os.waitpid(inner, 0)[1]
    import select
    while True:
        pid, status = os.waitpid(inner, os.WNOHANG)
        if pid:
            return status
        ready, _, _ = select.select([kill_fd], [], [], 0.02)
        if ready:
            with contextlib.suppress(OSError):
                os.kill(inner, signal.SIGKILL)  # PID 1 of the session's namespace: the kernel kills the rest
            return os.waitpid(inner, 0)[1]


_VIEW = "NOT isolated: the host's filesystem is in view"
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_CGROUP_FDS = {}  # the session cgroups' parent directories, opened before the root switched
_SECCOMP = None
_SCRATCH = "/tmp/evolve-scratch"  # in the zygote's private /tmp: each session mounts its own tmpfs here
_CONTAINER = False  # inside a container: its mounts are the view, and the sessions' namespaces are ours
_SHARED = ("/dev/shm", "/dev/mqueue")  # in a container: shared by all in it, so fresh for each session
_HIDDEN = ("/evolve-control",)  # in a container: the worker's socket directory, unmounted in each session


def _probe(config):
    """In a container: '' when a session can have its own namespaces and fresh mounts, else what the engine
    refused, in words (tried in a throwaway child, as a session would)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        flags = _layers.CLONE_NEWNS | _layers.CLONE_NEWPID | _layers.CLONE_NEWIPC | _layers.CLONE_NEWUTS
        names = "NEWNS|NEWPID|NEWIPC|NEWUTS"
        if config.get("network_isolation", True):
            flags, names = flags | _layers.CLONE_NEWNET, names + "|NEWNET"
        try:
            _layers.unshare(flags)
        except OSError as exc:
            os.write(write, f"unshare({names}) refused ({exc.strerror})".encode())
            os._exit(1)
        if os.fork() == 0:  # PID 1 of the new namespace, as a session's candidate would be
            try:
                _layers.session_mounts(_SCRATCH, 1, None, None, 16, _SHARED, _HIDDEN)
            except OSError as exc:
                os.write(write, f"{exc.strerror or exc} ({exc})".encode())
                os._exit(1)
            os._exit(0)
        os._exit(os.waitstatus_to_exitcode(os.wait()[1]))
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "" if code == 0 else said or f"the probe ended with {code}"


def main():
    global _VIEW, _SECCOMP, _CONTAINER, _SCRATCH  # noqa: PLW0603 (the zygote's state, set once and inherited by each fork)
    config = json.loads(sys.argv[2])
    _CONTAINER = config.get("container", False)
    _layers.hide_command_line()
    if sys.argv[1].isdigit():
        control = socket.socket(fileno=int(sys.argv[1]))
    else:  # a socket path: the worker, outside the container, listens there
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        control.connect(sys.argv[1])
    sys.path.extend(p for p in config.get("path", []) if p not in sys.path)
    _SECCOMP = _layers.seccomp_filter()
    for module in config["preload"]:
        try:
            __import__(module)
        except ImportError:
            pass  # a candidate that needs it will say so itself
    if _CONTAINER:  # its mounts are the view; say at once whether sessions can have namespaces there
        _SCRATCH = "/tmp"
        _VIEW = config.get("view", "the container's read-only root")
        refused = _probe(config)
        hello = json.dumps({"ok": not refused, "refused": refused}).encode()
        control.sendall(struct.pack(">I", len(hello)) + hello)
        if refused:
            return
    try:  # the view is made once here; every session's mount namespace starts as a copy of this one
        if _CONTAINER:
            raise OSError("in a container its own mounts are the view")
        _layers.unshare(_layers.CLONE_NEWNS)
        for parent in config.get("cgroup_parents", []):
            _CGROUP_FDS[parent] = os.open(parent, os.O_PATH | os.O_DIRECTORY)
        view = _layers.build_root(config["allow"], _DEVICES, ["/proc", _SCRATCH])
        _VIEW = f"a new root holding only {', '.join(view)}"
    except OSError as exc:
        if not _CONTAINER:
            _VIEW = f"NOT isolated: the host's filesystem is in view ({exc})"
    signal.signal(signal.SIGCHLD, _reap)
    _layers.become_subreaper()  # a leader that dies early leaves its orphans here, not to PID 1
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, _MESSAGE, 5)
        except InterruptedError:
            continue
        if not message:
            return
        setup = json.loads(message)
        leader = os.fork()
        if leader == 0:
            control.close()
            try:
                _session(setup, *fds)
            finally:
                os._exit(71)
        for fd in fds:
            os.close(fd)
        control.sendall(struct.pack(">i", leader))


if __name__ == "__main__":
    main()
