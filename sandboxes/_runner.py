"""The sandbox side of a process session. Started as `python -I _runner.py REQ_FD RESP_FD SETUP_JSON`.

It runs as trusted code only until the candidate is loaded: it isolates the network, sets rlimits,
drops to an unprivileged user, then reads requests. Standard library only, so that nothing the
candidate can reach was imported with privileges. Frames are a 4-byte big-endian length and UTF-8 JSON.
"""

import ctypes
import json
import math
import os
import resource
import struct
import sys
import traceback

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 1, 2, 4, 32, 4096, 8192, 16384
MS_PRIVATE = 1 << 18
_MAX_REQUEST = 64 * 1024 * 1024
_TRACE_CHARS = 2000


def _read_exact(fd, n):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _send(fd, message):
    body = json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def _receive(fd):
    (length,) = struct.unpack(">I", _read_exact(fd, 4))
    if length > _MAX_REQUEST:
        raise ValueError("request too large")
    return json.loads(_read_exact(fd, length))


def _unshare(flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _mount(source, target, fstype, flags, data=None):
    libc = ctypes.CDLL(None, use_errno=True)
    args = [a.encode() if isinstance(a, str) else None for a in (source, target, fstype)]
    if libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), data and data.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def _hide_private_dirs(keep, scratch):
    """In a new mount namespace, cover each directory others may not enter (such as /root) with an
    empty tmpfs, and bind back read-only only the paths in `keep` that lie under it (the interpreter)."""
    keep = sorted({os.path.realpath(p) for p in keep if p and os.path.exists(p)})
    closed = set()
    for path in keep:
        parts = path.split("/")
        for i in range(2, len(parts)):
            ancestor = "/".join(parts[:i])
            if not os.stat(ancestor).st_mode & 0o001:
                closed.add(ancestor)
                break
    if not closed:
        return "no private directories on the interpreter's path"
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for top in sorted(closed):
        inner = [p for p in keep if p.startswith(top + "/")]
        inner = [p for p in inner if not any(p.startswith(q + "/") for q in inner)]
        parked = []
        for n, path in enumerate(inner):
            spot = os.path.join(scratch, f".park{n}")
            os.mkdir(spot)
            _mount(path, spot, None, MS_BIND | MS_REC)
            parked.append((spot, path))
        _mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64k")
        for spot, path in parked:
            os.makedirs(path, exist_ok=True)
            _mount(spot, path, None, MS_MOVE)
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
            os.rmdir(spot)
    return "private mount namespace: " + ", ".join(sorted(closed)) + " hidden, interpreter bound read-only"


def _isolate(setup):
    """Apply every layer we can; return what each layer's state is."""
    layers = {}
    want_net = setup.get("network_isolation", True)
    is_root = os.geteuid() == 0
    if want_net:
        try:
            _unshare(CLONE_NEWNET if is_root else CLONE_NEWUSER | CLONE_NEWNET)
            layers["network"] = "isolated: new empty network namespace"
        except OSError as exc:
            layers["network"] = f"NOT isolated: unshare failed ({exc.strerror})"
    else:
        layers["network"] = "NOT isolated: sandbox.network_isolation=false"
    if is_root:
        keep = [sys.base_prefix, sys.prefix, *[p for p in sys.path if os.path.isdir(p)]]
        try:
            layers["filesystem"] = _hide_private_dirs(keep, os.getcwd())
        except OSError as exc:
            layers["filesystem"] = f"NOT isolated: {exc}"
    else:
        layers["filesystem"] = "NOT isolated: needs root for a private mount namespace"
    limits = setup["limits"]
    mb = 1024 * 1024
    for name, key, value in (
        ("RLIMIT_CPU", "cpu_seconds", limits["cpu_seconds"]),
        ("RLIMIT_AS", "memory_mb", limits["memory_mb"] * mb),
        ("RLIMIT_NPROC", "max_processes", limits["max_processes"]),
        ("RLIMIT_FSIZE", "file_size_mb", limits["file_size_mb"] * mb),
        ("RLIMIT_NOFILE", "open_files", limits["open_files"]),
        ("RLIMIT_CORE", None, 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))
    layers["rlimits"] = "cpu, address space, processes, file size, open files, no core dumps"
    uid, gid = setup.get("uid"), setup.get("gid")
    if uid is not None and is_root:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        layers["user"] = f"unprivileged uid {uid}"
    elif is_root:
        layers["user"] = "NOT dropped: running as root (sandbox.user=null)"
    else:
        layers["user"] = f"runs as the invoking user (uid {os.getuid()}), no privileges to drop"
    layers["environment"] = "empty but for thread caps and HOME/TMPDIR in the scratch dir"
    return layers


def _plain(value, depth=0):
    """Return `value` as plain JSON data, or raise TypeError/ValueError naming what is wrong."""
    if depth > 64:
        raise ValueError("result is nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"result contains a non-finite float ({value})")
        return value
    if kind in (list, tuple):
        return [_plain(v, depth + 1) for v in value]
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"result has a dict key of type {type(k).__name__}; keys must be str")
            out[k] = _plain(v, depth + 1)
        return out
    module = getattr(kind, "__module__", "")
    if module == "numpy" and kind.__name__ == "ndarray":
        return _plain(value.tolist(), depth + 1)
    if module == "numpy" and hasattr(value, "item"):
        return _plain(value.item(), depth + 1)
    raise TypeError(f"result contains a value of type {kind.__name__}; return plain JSON data")


def _error(exc, kind="error"):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # the runner's own frames say nothing about the candidate
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return {"ok": False, "kind": kind, "error": f"{type(exc).__name__}: {exc}"[:_TRACE_CHARS],
            "traceback": text[-_TRACE_CHARS:]}


def serve(req_fd, resp_fd, layers):
    """Say ready with the layer report, then load and call the candidate until the parent hangs up."""
    namespace = {"__name__": "candidate", "__builtins__": __builtins__}
    _send(resp_fd, {"ok": True, "ready": True, "layers": layers, "pid": os.getpid()})
    while True:
        try:
            request = _receive(req_fd)
        except EOFError:
            return
        op = request.get("op")
        if op == "load":
            try:
                exec(compile(request["source"], "candidate.py", "exec"), namespace)
                reply = {"ok": True}
            except BaseException as exc:  # SystemExit from the candidate is a failure too
                reply = _error(exc, "load")
        elif op == "call":
            try:
                fn = namespace.get(request["function"])
                if not callable(fn):
                    raise NameError(f"the program defines no function {request['function']!r}")
                result = fn(*request["args"])
            except BaseException as exc:
                reply = _error(exc, "call")
            else:
                try:
                    reply = {"ok": True, "result": _plain(result)}
                except (TypeError, ValueError) as exc:
                    reply = {"ok": False, "kind": "result", "error": str(exc)[:_TRACE_CHARS]}
        else:
            reply = {"ok": False, "kind": "protocol", "error": f"unknown op {op!r}"}
        _send(resp_fd, reply)


def main():
    req_fd, resp_fd = int(sys.argv[1]), int(sys.argv[2])
    setup = json.loads(sys.argv[3])
    serve(req_fd, resp_fd, _isolate(setup))


if __name__ == "__main__":
    main()
