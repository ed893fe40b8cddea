"""The fork server both backends share: sessions forked from a zygote, spoken to over pipes.

A backend (`ProcessSandbox`, `DockerSandbox`) starts the zygote (`_zygote.py`, a clean interpreter
that imports the heavy modules once) and says how to reach it; `ForkServerSandbox` asks it for one
isolated session per candidate and hands the pipes to a `ForkSession`, which speaks the wire protocol:
a 4-byte length and JSON, each request carrying a fresh nonce that its reply must echo.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import math
import os
import secrets
import select
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sandboxes._runner import ARRAY, PACKED, TUPLE
from sandboxes.base import Array, Picked, Sandbox, Session
from sandboxes.cgroups import CgroupSupport, SessionCgroup
from sandboxes.errors import CandidateCrash, CandidateError, CandidateTimeout, SandboxUnavailable
from sandboxes.limits import KILL_MULTIPLE, SandboxLimits
from sandboxes.text import candidate_text

__all__ = ["THREAD_CAPS", "ForkHandle", "ForkServerSandbox", "ForkSession", "parse_reply", "process_tree_cpu_seconds",
           "recv_exact"]

_OUTPUT_TAIL = 4000
_START_CPU = 5.0  # CPU seconds a session's setup may use; its wall-clock kill is KILL_MULTIPLE times it
_POLL = 0.25  # seconds between readings of a session's CPU time while a reply is awaited
_SPARES = 3  # sessions set up ahead, one per distinct limits (a staged evaluation uses several)
_FLOAT_RANGE = 2 ** 1024  # the smallest integer a float cannot hold
_PIPE_AHEAD = 60_000  # a request longer than this is written only once the replies ahead of it are read
_READ_AHEAD = 65536  # bytes a read of the reply pipe asks for, whatever the frame needs
THREAD_CAPS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# every session runs under a uid of its own: a range of UID_SLOTS per fork server, placed by the server's
# host pid (unique while it lives), so no per-uid limit or signal crosses sessions or sandboxes
UID_BASE = 1 << 20
UID_SLOTS = 16


class _OverCpu(CandidateTimeout):
    """A session used more CPU time than its budget (read outside the sandbox while a reply was awaited)."""


_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 300


def _in_float_range(data: bytes) -> bool:
    """Whether no number in a JSON frame can lie beyond float range: such a number needs an exponent (a digit
    followed by e or E) or 300 digits in a row (the largest float has 309). A string that holds either only
    costs the slower parse, which checks each number."""
    digits = data.translate(_DIGITS)
    return b"0e" not in digits and b"0E" not in digits and _LONG_RUN not in digits


def _packed(value: Any) -> Any:
    """An argument that is not JSON data but a buffer (a numpy array or scalar, say) as `{PACKED: its bytes in
    base64, "f": format, "s": shape}`, which the runner unpacks to the nested lists `tolist()` would make:
    the candidate sees the same numbers, sent without a decimal text of each."""
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable") from None
    if view.format not in _PACKABLE or not view.c_contiguous:
        return view.tolist()
    return {PACKED: base64.b64encode(view).decode("ascii"), "f": view.format, "s": list(view.shape)}


_PACKABLE = frozenset("dflqi")  # formats `array.array` reads alike on both sides (the same machine's sizes)
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_packed)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"candidate returned {name}, which is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"candidate returned {text[:40]}, which is beyond the range of a float")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)  # more than 4300 digits raise ValueError here
    if abs(value) > _FLOAT_RANGE:
        raise ValueError(f"candidate returned an integer of {len(text)} digits, beyond the range of a float")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in `value` (level by level, without recursion: the candidate chooses
    the depth)."""
    deepest, level = 0, [value]
    while True:
        containers = [item for item in level if isinstance(item, (list, tuple, dict))]
        if not containers:
            return deepest
        deepest += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]


def _as_tuple(obj: dict[str, Any]) -> Any:
    """A tuple the runner sent as `{TUPLE: [...]}` is a tuple again, a numpy array (`{ARRAY: [...]}`) an `Array`."""
    if len(obj) == 1 and isinstance(obj.get(TUPLE), list):
        return tuple(obj[TUPLE])
    return Array(obj[ARRAY]) if len(obj) == 1 and isinstance(obj.get(ARRAY), list) else obj


def _as_list(obj: dict[str, Any]) -> Any:
    """A tuple or numpy array the runner sent tagged is a list, as plain JSON would have it."""
    if len(obj) == 1 and isinstance(obj.get(TUPLE), list):
        return obj[TUPLE]
    return obj[ARRAY] if len(obj) == 1 and isinstance(obj.get(ARRAY), list) else obj


_LISTS = json.JSONDecoder(parse_constant=_reject_constant, object_hook=_as_list)
_TUPLES = json.JSONDecoder(parse_constant=_reject_constant, object_hook=_as_tuple)


def parse_reply(data: bytes, max_depth: int, keep_tuples: bool = False) -> dict[str, Any]:
    """A reply frame as plain, finite JSON nested at most `max_depth` deep (the candidate's tuples as
    lists, or as tuples with `keep_tuples`); ValueError says what is wrong."""
    hook = _as_tuple if keep_tuples else _as_list
    try:
        if _in_float_range(data):  # parsed without a Python call per number
            reply = (_TUPLES if keep_tuples else _LISTS).decode(data.decode())
        else:
            reply = json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float,
                               parse_int=_bounded_int, object_hook=hook)
    except RecursionError:
        raise ValueError(f"reply is nested deeper than max_result_depth={max_depth}") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ValueError("reply is not a protocol message")
    if data.count(b"[") + data.count(b"{") > max_depth + 1 and _depth(reply.get("result")) > max_depth:
        raise ValueError(f"reply is nested deeper than max_result_depth={max_depth}")
    return reply


class ForkHandle:
    """A session forked by the zygote: a leader (its process group) and the PID 1 of a new namespace."""

    def __init__(self, leader: int, inner: int, status_fd: int) -> None:
        self.pid, self.inner, self._status = leader, inner, status_fd
        self._code: int | None = None

    def kill(self) -> None:
        """Kill PID 1 of the session's namespace: the kernel kills everything else in it, and the
        leader stays to report the status and reap."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.inner, signal.SIGKILL)

    def wait(self) -> int:
        if self._code is None and self._status < 0:
            self._code = -signal.SIGKILL  # released: it was killed on purpose
        if self._code is None:
            ready, _, _ = select.select([self._status], [], [], 2)
            data = os.read(self._status, 4) if ready else b""
            if len(data) == 4:
                self._code = os.waitstatus_to_exitcode(struct.unpack(">i", data)[0])
            else:  # the leader did not answer: take the whole session down
                self._kill_everything()
                self._code = -signal.SIGKILL
            os.close(self._status)
            self._status = -1
        return self._code

    @property
    def alive(self) -> bool:
        """Whether the session is still running (its leader has not reported an exit status)."""
        return self._code is None and self._status >= 0 and not select.select([self._status], [], [], 0)[0]

    def _kill_everything(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def release(self) -> None:
        """Stop listening for the exit status (the leader still reaps everything)."""
        if self._status >= 0:
            os.close(self._status)
            self._status = -1


@dataclass
class _Batch:
    """A `call_many` request sent ahead (`send_many`), with its reply or error once read."""

    nonce: int
    function: str
    n: int
    per_call: float
    pick_counts: list[int] | None = None
    reply: dict[str, Any] | None = None
    error: CandidateError | None = None


class ForkSession(Session):
    """A running sandbox child with a candidate loaded, spoken to over two pipes. Built by
    `ForkServerSandbox.session`."""

    def __init__(self, proc: ForkHandle, req_fd: int, resp_fd: int, scratch: Path, limits: SandboxLimits,
                 cpu_clock: Callable[[], float] | None = None, cgroup: SessionCgroup | None = None) -> None:
        self._proc = proc
        self._cpu_clock = cpu_clock
        self._cgroup = cgroup
        self._req = req_fd
        self._resp = resp_fd
        self._scratch = scratch
        self._limits = limits
        self._left = limits.wall_seconds  # charged only while a call runs: evaluator time is not the candidate's
        self._cpu_base = 0.0  # the session's CPU reading when it said ready: its setup is not the candidate's
        self._cpu_last: float | None = None  # the last reading, for when the session's processes are gone
        self._cpu_wait: tuple[float | None, float, str] | None = None  # this wait's start reading, budget, what
        self._dead_reason: str | None = None
        self._queued: collections.deque[_Batch] = collections.deque()  # batches sent, replies not yet received
        self._inbox = b""  # bytes read from the reply pipe past the frame that was asked for
        self.layers: dict[str, str] = {}
        self.uid: int | None = None  # the uid the session runs under (set by its sandbox)

    # -- the wire ---------------------------------------------------------------------------------
    def _read_exact(self, n: int, deadline: float) -> bytes:
        """`n` bytes of the reply pipe; a read takes what is there (up to 64 kB), so that a frame's length
        and body, and often a reply sent ahead, come with one select and one read."""
        if len(self._inbox) >= n:
            data, self._inbox = self._inbox[:n], self._inbox[n:]
            return data
        chunks, n = [self._inbox], n - len(self._inbox)
        self._inbox = b""
        while n > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CandidateTimeout("timed out")
            ready, _, _ = select.select([self._resp], [], [], min(remaining, _POLL) if self._cpu_clock else remaining)
            if not ready:
                over = self._over_cpu()
                if over:
                    raise _OverCpu(over)
                continue
            chunk = os.read(self._resp, max(n, _READ_AHEAD) if n < 1 << 20 else 1 << 20)
            if not chunk:
                raise CandidateCrash("closed")
            if len(chunk) > n:
                chunk, self._inbox = chunk[:n], chunk[n:]
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _exchange(self, request: dict[str, Any] | None, timeout: float, max_bytes: int | None = None,
                  max_depth: int | None = None, cpu: tuple[float, str] | None = None) -> dict[str, Any]:
        for batch in self._queued:  # replies of batches sent ahead come first; nobody will receive them now
            self._collect(batch)
        self._queued.clear()
        nonce = self._post(request) if request is not None else None
        return self._await(nonce, timeout, max_bytes, max_depth, cpu)

    def _over_cpu(self) -> str | None:
        """Why the session is over a CPU budget (the session's `cpu_seconds`, or the awaited reply's), or None."""
        now = self.cpu_seconds()
        if now is None:
            return None
        if now > self._limits.cpu_seconds:
            return f"used {now:.2f} s of CPU in its session, over cpu_seconds={self._limits.cpu_seconds:g}"
        if self.cpu_allowance is not None and now - self._cpu_charged > self.cpu_allowance:
            return (f"used {now - self._cpu_charged:.2f} s of CPU since its last charge, over the "
                    f"{self.cpu_allowance:.2f} s of its budget left")
        if self._cpu_wait is not None and self._cpu_wait[0] is not None:
            start, budget, what = self._cpu_wait
            if now - start > budget:
                return f"used {now - start:.2f} s of CPU {what}"
        return None

    def _post(self, request: dict[str, Any]) -> int:
        """Write `request` with a fresh nonce (a frame the candidate forged ahead of time cannot match)."""
        if self._dead_reason:
            raise CandidateError(f"session is over: {self._dead_reason}")
        over = self._over_cpu()  # what it left running between calls counts too
        if over:
            self._kill(over)
            raise CandidateTimeout(f"candidate {over}; killed with its process group")
        nonce = request["nonce"] = secrets.randbits(62)
        body = _ENCODER.encode(request).encode()
        if len(body) > _PIPE_AHEAD:  # the candidate may be writing a long reply that nobody reads meanwhile
            for batch in self._queued:
                self._collect(batch)
        frame = memoryview(struct.pack(">I", len(body)) + body)  # one write: the child wakes once per request
        with self._failures("write"):
            while frame:
                frame = frame[os.write(self._req, frame):]
        return nonce

    def _await(self, nonce: int | None, timeout: float, max_bytes: int | None = None,
               max_depth: int | None = None, cpu: tuple[float, str] | None = None) -> dict[str, Any]:
        """Read the reply to the request with `nonce` within `timeout` of wall-clock time (and the session's
        wall time); the session is killed once over its `cpu_seconds`, or over `cpu` = (seconds of CPU this
        reply may take, what they are for)."""
        if self._dead_reason:
            raise CandidateError(f"session is over: {self._dead_reason}")
        started = time.monotonic()
        over = "session wall_seconds" if self._left <= timeout else f"timeout={timeout:g}s"
        if cpu is not None and self._left > timeout:
            over = f"{timeout:g} s of wall-clock time, {KILL_MULTIPLE:g} times its CPU budget"
        deadline = started + min(timeout, self._left)
        self._cpu_wait = (self.cpu_seconds(), *cpu) if cpu is not None else None
        try:
            with self._failures(over):
                (length,) = struct.unpack(">I", self._read_exact(4, deadline))
                cap = max_bytes or self._limits.max_result_bytes
                if length > cap:
                    self._kill(f"reply of {length} bytes is over max_result_bytes={self._limits.max_result_bytes}"
                               + (" per call" if max_bytes else ""))
                    raise CandidateError(self._dead_reason)
                reply = parse_reply(self._read_exact(length, deadline), max_depth or self._limits.max_result_depth,
                                    self.keep_tuples)
                if reply.get("nonce") != nonce:
                    raise ValueError("reply does not answer this request (forged or out of order)")
                return reply
        finally:
            self._left -= time.monotonic() - started
            self._cpu_wait = None

    @contextlib.contextmanager
    def _failures(self, over: str) -> Iterator[None]:
        """Turn whatever goes wrong on the wire into the candidate's `CandidateError`, killing the session."""
        try:
            yield
        except _OverCpu as exc:
            self._kill(str(exc))
            raise CandidateTimeout(f"candidate {exc}; killed with its process group") from None
        except CandidateTimeout:
            self._kill(f"timed out ({over})")
            raise CandidateTimeout(f"candidate timed out ({over}); killed with its process group") from None
        except (CandidateCrash, BrokenPipeError):
            message = self._crash_message()  # before the kill, which would hide how it ended
            self._kill("crashed")
            raise CandidateCrash(message) from None
        except CandidateError:
            raise
        except Exception as exc:  # noqa: BLE001 (whatever the candidate sent, the trusted side only reports it)
            self._kill("broke the protocol")
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise CandidateError(f"candidate sent an invalid reply: {reason}") from None

    def _crash_message(self) -> str:
        code = self._proc.wait()
        if code < 0:
            name = signal.Signals(-code).name
            hint = {"SIGXCPU": " (cpu_seconds limit)", "SIGXFSZ": " (file_size_mb limit)",
                    "SIGKILL": " (killed; memory or a limit)", "SIGSEGV": " (segfault)"}.get(name, "")
            what = f"killed by {name}{hint}"
            memory = self._cgroup.memory_events() if self._cgroup is not None else ""
            if memory:
                what += f"; the session's memory limit was hit ({memory})"
        else:
            what = f"exited with code {code}"
        tail = candidate_text(self.output, "result").strip().splitlines()[-3:]
        return f"candidate process {what}" + (f": {' | '.join(tail)}" if tail else "")

    def _kill(self, reason: str) -> None:
        if self._dead_reason is None:
            self._dead_reason = reason
        self._proc.kill()

    # -- the Session API --------------------------------------------------------------------------
    def start(self, source: str) -> None:
        """Wait for the child's ready message, then load the candidate's source."""
        self.wait_ready()
        self.load(source)

    def wait_ready(self) -> None:
        """Wait until the child has set up its isolation and says it is ready for a program."""
        ready = self._exchange(None, KILL_MULTIPLE * _START_CPU,
                               cpu=(_START_CPU, f"setting up the session, over {_START_CPU:g} s"))
        if not ready["ok"]:
            raise CandidateError(str(ready.get("error")))
        self.layers = ready.get("layers", {})
        self._cpu_base = self.cpu_seconds() or 0.0

    @property
    def cgroup(self) -> SessionCgroup | None:
        """The session's own cgroup, when the backend gives it one."""
        return self._cgroup

    @property
    def alive(self) -> bool:
        """Whether the child is still there (a spare session is checked before it is used)."""
        return self._dead_reason is None and self._proc.alive

    def load(self, source: str) -> None:
        """Load the candidate's source into a ready child: its CPU time is charged against `call_timeout`,
        and it is killed past `KILL_MULTIPLE` times that of wall-clock time."""
        budget = self._limits.call_timeout
        reply = self._exchange({"op": "load", "source": source}, KILL_MULTIPLE * budget,
                               cpu=(budget, f"loading the program (its import), over call_timeout={budget:g}s"))
        if not reply["ok"]:
            raise CandidateError(f"program failed to load: {_said(reply)}")

    def cpu_seconds(self) -> float | None:
        """CPU time of everything the session ran since it was ready for a program (its import on), read
        outside the sandbox (its cgroup, or the kernel's counts for its process tree); None when neither
        can be read. Once the session has ended and its processes are gone, the last reading."""
        if self._cpu_clock is None:
            return None
        try:
            self._cpu_last = self._cpu_clock() - self._cpu_base
        except (OSError, ValueError, KeyError):
            return self._cpu_last if self._dead_reason else None
        return self._cpu_last

    @property
    def pid(self) -> int:
        """The session's process group (the leader's pid)."""
        return self._proc.pid

    def call(self, function: str, *args: Any, timeout: float | None = None) -> Any:
        """Call `function(*args)` in the candidate and return its plain-data result."""
        return self.call_kwargs(function, args, {}, timeout=timeout)

    def call_kwargs(self, function: str, args: Sequence[Any], kwargs: dict[str, Any],
                    timeout: float | None = None) -> Any:
        """Call `function(*args, **kwargs)` in the candidate and return its plain-data result."""
        request = {"op": "call", "function": function, "args": list(args)}
        if kwargs:
            request["kwargs"] = dict(kwargs)
        reply = self._exchange(request, timeout or self._limits.call_timeout)
        if not reply["ok"]:
            raise CandidateError(_said(reply))
        return reply.get("result")

    def call_many(self, function: str, arg_lists: Sequence[Sequence[Any]], timeout: float | None = None) -> list[Any]:
        """`function` called once per argument list in one round trip. Each result is checked as for
        `call` (plain JSON, `max_result_bytes` and `max_result_depth` per call). Each call has `timeout`
        of its own (a timer in the sandbox ends the batch at the call that overruns it, as `CandidateTimeout`);
        the worker's deadline for the whole batch, `timeout` times the number of calls, catches a candidate
        that disarms that timer. A failure in call k raises `CandidateError` naming call k."""
        if not arg_lists:
            return []
        return self.receive_many(self.send_many(function, arg_lists, timeout))

    def send_many(self, function: str, arg_lists: Sequence[Sequence[Any]], timeout: float | None = None,
                  pick_counts: Sequence[int] | None = None) -> int:
        """Write a `call_many` batch and return at once (see `Session.send_many`)."""
        arg_lists = [list(args) for args in arg_lists]
        if not arg_lists:
            raise ValueError("send_many needs at least one argument list")
        per_call = timeout or self._limits.call_timeout
        request = {"op": "call_many", "function": function, "arg_lists": arg_lists, "timeout": per_call}
        counts = None
        if pick_counts is not None:
            counts = request["pick_counts"] = [int(c) for c in pick_counts]
            if len(counts) != len(arg_lists):
                raise ValueError(f"pick_counts has {len(counts)} entries for {len(arg_lists)} calls")
        nonce = self._post(request)
        self._queued.append(_Batch(nonce, function, len(arg_lists), per_call, counts))
        return nonce

    def receive_many(self, ticket: int) -> list[Any]:
        """The results of the batch `send_many` returned `ticket` for; batches are received in the order sent."""
        if not self._queued or self._queued[0].nonce != ticket:
            raise ValueError("receive_many: batches are received in the order they were sent, each once")
        batch = self._collect(self._queued[0])
        self._queued.popleft()
        if batch.error is not None:
            raise batch.error
        reply, function, n, per_call = batch.reply, batch.function, batch.n, batch.per_call
        if not reply["ok"]:
            index = reply.get("index")
            where = f"call {index} of {n} ({function})" if isinstance(index, int) else f"call_many({function})"
            if reply.get("kind") == "timeout":  # the runner's own timer: a call that would have timed out alone
                self._kill(f"timed out (timeout={per_call:g}s)")
                error: CandidateError = CandidateTimeout(f"candidate timed out (timeout={per_call:g}s) in {where}; "
                                                         "killed with its process group")
            else:
                error = CandidateError(f"{where}: {_said(reply)}")
            error.index = index if isinstance(index, int) and 0 <= index < n else None
            raise error
        picked = reply.get("picked")
        if picked is not None and batch.pick_counts is not None and type(picked) is list and len(picked) == n and \
                all(type(k) is int and 0 <= k < c for k, c in zip(picked, batch.pick_counts)):
            return Picked(picked)
        results = reply.get("result")
        if picked is not None or not isinstance(results, list) or len(results) != n:
            self._kill("broke the protocol")
            raise CandidateError(f"candidate sent an invalid reply: {n} results expected")
        return results

    def _collect(self, batch: _Batch) -> _Batch:
        """Read `batch`'s reply (once), keeping it or the error it raised for `receive_many`."""
        if batch.reply is None and batch.error is None:
            try:
                batch.reply = self._await(batch.nonce, batch.per_call * batch.n,
                                          max_bytes=self._limits.max_result_bytes * batch.n,
                                          max_depth=self._limits.max_result_depth + 1)
            except CandidateError as exc:
                batch.error = exc
        return batch

    @property
    def output(self) -> str:
        """The last few kilobytes of the candidate's stdout and stderr."""
        path = self._scratch / ".output"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - _OUTPUT_TAIL))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        """Kill whatever is left of the session and remove its scratch directory."""
        self._kill("closed")
        self._proc.release()
        close_clock = getattr(self._cpu_clock, "close", None)
        if close_clock is not None:
            self._cpu_last = self.cpu_seconds()  # its last reading; the counter is closed below
            close_clock()
        for fd in (self._req, self._resp):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._scratch, ignore_errors=True)


class ForkServerSandbox(Sandbox):
    """What both fork-server backends share: sessions requested from a zygote over a Unix socket.

    A subclass says how to reach its zygote (`_control`), what it adds to a session's setup
    (`_setup`), and how a session is killed (`_handle`, with `_kill_pipe` when the worker cannot
    signal the session itself).
    """

    _kill_pipe = False
    _spares = True  # open the next session while one runs (not where closing a session kills its neighbours)
    _processes_capped = False  # the backend caps a session's processes itself (a container's pids limit)

    def __init__(self, user: str | None, network_isolation: bool, preload: tuple[str, ...], scratch_mb: int,
                 scratch_inodes: int = 4096, cgroups: bool = False) -> None:
        self._network_isolation = network_isolation
        self._preload = tuple(preload)
        self._scratch_mb = scratch_mb
        self._scratch_inodes = scratch_inodes
        self._switch = bool(user) and os.geteuid() == 0  # run each session under a uid of its own
        self._range_key = 0  # the running fork server's host pid: where its range of uids lies
        self._uids: set[int] = set()  # the uids of the sessions open now
        self._next_slot = 0
        self._lock = threading.Lock()
        self._cgroups = CgroupSupport.probe() if cgroups else CgroupSupport(0, {}, "not used by this backend")
        self._stale: list[SessionCgroup] = []  # sessions whose cgroup could not be removed at once
        self._spare: list[tuple[SandboxLimits, ForkSession]] = []  # next sessions, set up, one per limits
        self._preparing: threading.Thread | None = None
        self._spare_lock = threading.Lock()
        self._closed = False
        self._restarting = False

    def _control(self) -> socket.socket:
        """The socket to the zygote, starting it when needed."""
        raise NotImplementedError

    def _setup(self) -> dict[str, Any]:
        """Backend-specific entries of a session's setup."""
        return {}

    def _handle(self, leader: int, inner: int, status_fd: int, kill_fd: int | None):
        return ForkHandle(leader, inner, status_fd)

    def _take_uid(self) -> int | None:
        """A uid no open session of this fork server has (round robin over its range), or None."""
        if not self._switch:
            return None
        base = UID_BASE + self._range_key * UID_SLOTS
        with self._spare_lock:
            for step in range(UID_SLOTS):
                uid = base + (self._next_slot + step) % UID_SLOTS
                if uid not in self._uids:
                    self._uids.add(uid)
                    self._next_slot = (uid - base + 1) % UID_SLOTS
                    return uid
        raise SandboxUnavailable(f"more than {UID_SLOTS} sessions of one sandbox at once: each needs a uid of its own")

    def _give_uid(self, uid: int | None) -> None:
        with self._spare_lock:
            self._uids.discard(uid)

    def _fit(self, limits: SandboxLimits) -> None:
        """Adjust the backend to a session's limits before it starts (a container's memory, say)."""

    def _cpu_clock(self, inner: int, cgroup: SessionCgroup | None) -> Callable[[], float] | None:
        """How to read the session's CPU time from outside: its cgroup, else PID 1's own count."""
        if cgroup is not None:
            return cgroup.cpu_counter()
        return (lambda: process_tree_cpu_seconds(inner)) if inner > 0 else None

    def _sweep(self) -> None:
        """Remove the cgroups of earlier sessions whose last processes have gone since."""
        with self._spare_lock:  # the spare's thread opens sessions too
            self._stale = [c for c in self._stale if not c.remove(wait=0)]

    @contextlib.contextmanager
    def session(self, source: str, limits: SandboxLimits) -> Iterator[ForkSession]:
        """Have the zygote fork an isolated session, load `source` into it, yield it, always clean up.

        The next session (same limits) is forked and set up on a background thread while this one runs,
        so a session costs only the program's load; it is fresh: no candidate has run in it.
        """
        session = self._take_spare(limits) or self._open(limits)
        try:
            session.load(source)
            self._prepare_spare(limits)
            yield session
        finally:
            self._dispose(session)

    def _open(self, limits: SandboxLimits) -> ForkSession:
        """Fork a session from the zygote and wait until it is ready for a program."""
        scratch = Path(tempfile.mkdtemp(prefix="evolve-sbx-"))  # on the host: only the output file
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        status_r, status_w = os.pipe()
        kill_r, kill_w = os.pipe() if self._kill_pipe else (None, None)
        output = open(scratch / ".output", "wb")  # noqa: SIM115 (its descriptor goes to the session; closed below)
        self._sweep()
        cgroup = self._cgroups.session(limits.memory_mb * 2**20, limits.max_processes)
        setup = {"limits": asdict(limits), "scratch": str(scratch),
                 "scratch_mb": self._scratch_mb, "scratch_inodes": self._scratch_inodes,
                 "network_isolation": self._network_isolation,
                 "cgroup": cgroup.procs if cgroup else None, "cgroup_layer": self._cgroups.describe(),
                 "processes_capped": self._processes_capped,
                 "env": {**THREAD_CAPS, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, **self._setup()}
        fds = [req_r, resp_w, status_w, output.fileno()] + ([kill_r] if kill_r is not None else [])
        uid = None
        try:
            with self._lock:
                for attempt in (1, 2):  # a fork server that died (killed from outside, say) is started anew
                    control = self._control()
                    self._fit(limits)
                    self._give_uid(uid)
                    uid = setup["uid"] = setup["gid"] = self._take_uid()
                    try:
                        socket.send_fds(control, [json.dumps(setup).encode()], fds)
                        leader = struct.unpack(">i", recv_exact(control, 4))[0]
                        break
                    except (ConnectionError, CandidateCrash):
                        if attempt == 2:
                            raise CandidateCrash("the sandbox fork server stopped and could not be restarted") from None
                        self._restarting = True  # close() must not wait for a spare's thread: we hold the lock
                        try:
                            self.close()
                        finally:
                            self._restarting, self._closed = False, False
        except BaseException:
            self._give_uid(uid)
            raise
        finally:
            for fd in fds:
                if fd != output.fileno():
                    os.close(fd)
            output.close()
        ready, _, _ = select.select([status_r], [], [], KILL_MULTIPLE * _START_CPU)
        inner = struct.unpack(">i", os.read(status_r, 4))[0] if ready else 0
        session = ForkSession(self._handle(leader, inner, status_r, kill_w), req_w, resp_r, scratch, limits,
                              self._cpu_clock(inner, cgroup), cgroup)
        session.uid = uid
        try:
            session.wait_ready()
        except BaseException:
            self._dispose(session)
            raise
        return session

    def _dispose(self, session: ForkSession) -> None:
        session.close()
        self._give_uid(session.uid)
        cgroup = session.cgroup
        if cgroup is not None and not cgroup.remove(wait=0):
            with self._spare_lock:
                self._stale.append(cgroup)  # its leader is still reaping: removed at a later session

    def _prepare_spare(self, limits: SandboxLimits) -> None:
        """Open the next session on a background thread (one at a time)."""
        with self._spare_lock:
            if not self._spares or self._closed or self._preparing is not None or \
                    any(made_for == limits for made_for, _ in self._spare):
                return
            self._preparing = threading.Thread(target=self._make_spare, args=(limits,), daemon=True,
                                               name="evolve-sandbox-spare")
            self._preparing.start()

    def _make_spare(self, limits: SandboxLimits) -> None:
        try:
            session = self._open(limits)
        except Exception:  # noqa: BLE001 (the next session opens the usual way, and says what is wrong)
            session = None
        old = None
        with self._spare_lock:
            self._preparing = None
            if session is not None and not self._closed:
                self._spare.append((limits, session))
                session = None
                old = self._spare.pop(0)[1] if len(self._spare) > _SPARES else None  # an evaluation's stages
        if old is not None:
            self._dispose(old)
        if session is not None:
            self._dispose(session)

    def _take_spare(self, limits: SandboxLimits) -> ForkSession | None:
        """The spare session made for these limits, when it is alive (a dead one is closed)."""
        with self._spare_lock:
            preparing = self._preparing
        if preparing is not None:
            preparing.join()
        with self._spare_lock:
            match = next((pair for pair in self._spare if pair[0] == limits), None)
            if match is not None:
                self._spare.remove(match)
        if match is None:
            return None
        if match[1].alive:
            return match[1]
        self._dispose(match[1])
        return None

    def layers(self) -> dict[str, str]:
        """Start one empty session and report the protections it had."""
        with self.session("", SandboxLimits()) as s:
            return dict(s.layers)

    @property
    def server_pid(self) -> int | None:
        """The host pid of the fork server every session descends from (None before it starts)."""
        return None

    def spare_leader(self) -> int | None:
        """The leader pid of the idle session set up last for a next program (waiting until it is
        ready), or None when there is none."""
        with self._spare_lock:
            preparing = self._preparing
        if preparing is not None:
            preparing.join()
        return self._spare[-1][1].pid if self._spare else None

    def close(self) -> None:
        """Stop the zygote (subclasses), close the spare session, and remove what is left of the
        sessions' cgroups."""
        with self._spare_lock:
            self._closed = True
            preparing = self._preparing
        if preparing is not None and preparing is not threading.current_thread() and not self._restarting:
            preparing.join()  # it sees `_closed` and closes what it opened
        with self._spare_lock:
            spares, self._spare = self._spare, []
        for _, session in spares:
            self._dispose(session)
        for cgroup in self._stale:
            cgroup.remove(wait=10)  # returns once its processes are reaped: slow only on a loaded machine
        self._stale = []

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _said(reply: dict[str, Any]) -> str:
    """What a failed reply says (its traceback, else its error), through the gate: the candidate may have
    written the frame itself, so nothing in it is cut or clean unless cut and cleaned here."""
    return candidate_text(reply.get("traceback") or reply.get("error"), "result")


def process_tree_cpu_seconds(root: int) -> float:
    """CPU time of process `root` and every live descendant, with the children each has waited for (the
    kernel's /proc/<pid>/stat counts: utime, stime, cutime, cstime); OSError when `root` is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone since the listing
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[pid] = sum(int(v) for v in fields[11:15])
    if root not in ticks:
        raise OSError(f"process {root} is gone")
    tree, grown = {root}, True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    total = sum(ticks[pid] for pid in tree)
    return total / tick


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise CandidateCrash("the sandbox fork server stopped")
        data += chunk
    return data
