"""The sandbox side of a session: the request loop that loads the candidate and calls it (`serve`).

The zygote (`_zygote.py`) runs it in each isolated child once every layer is in place. Standard library
only. Frames are a 4-byte big-endian length and UTF-8 JSON; replies hold plain data only.
"""

import array
import base64
import json
import math
import os
import signal
import struct
import traceback

_MAX_REQUEST = 64 * 1024 * 1024
_TRACE_CHARS = 2000
TUPLE = "()"  # a tuple on the wire is {"()": [items]} (7 bytes more than the list JSON would make of it)
ARRAY = "[]"  # a numpy array on the wire is {"[]": [items]}, as `tolist()` makes it
PACKED = "b[]"  # an array argument on the wire: {"b[]": base64 of its bytes, "f": array format, "s": shape}


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
    return json.loads(_read_exact(fd, length), object_hook=_unpacked)


def _unpacked(obj):
    """A packed array argument as the nested lists of its values (`tolist()`'s); any other dict as it is."""
    data = obj.get(PACKED)
    if data is None or len(obj) != 3:
        return obj
    return _nested(array.array(obj["f"], base64.b64decode(data)).tolist(), obj["s"])


def _nested(flat, shape):
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nested(flat[k * step:(k + 1) * step], shape[1:]) for k in range(shape[0])]


def _plain(value, depth=0, limit=64):
    """Return `value` as plain JSON data, or raise TypeError/ValueError naming what is wrong."""
    if depth > limit:
        raise ValueError(f"result is nested deeper than max_result_depth={limit}")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"result contains a non-finite float ({value})")
        return value
    if kind is list:
        return [_plain(v, depth + 1, limit) for v in value]
    if kind is tuple:
        return {TUPLE: [_plain(v, depth + 1, limit) for v in value]}
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"result has a dict key of type {type(k).__name__}; keys must be str")
            out[k] = _plain(v, depth + 1, limit)
        return out
    module = getattr(kind, "__module__", "")
    if module == "numpy" and kind.__name__ == "ndarray":
        return {ARRAY: _plain(value.tolist(), depth + 1, limit)}
    if module == "numpy" and hasattr(value, "item"):
        return _plain(value.item(), depth + 1, limit)
    raise TypeError(f"result contains a value of type {kind.__name__}; return plain JSON data")


def _error(exc, kind="error"):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # the runner's own frames say nothing about the candidate
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return {"ok": False, "kind": kind, "error": f"{type(exc).__name__}: {exc}"[:_TRACE_CHARS],
            "traceback": text[-_TRACE_CHARS:]}


class _CallTimedOut(BaseException):
    """Raised by the per-call timer of a batch: a BaseException, so a candidate's `except Exception` lets it by."""


def _timed_out(signum, frame):
    raise _CallTimedOut


def _call_many(namespace, function, arg_lists, max_depth, timeout=None, counts=None):
    """Call `function` once per argument list; a failure in call k is reported with its index. With `counts`,
    the reply is `picked`, the index of each result's first highest number, when every result k is a list (or
    numpy array) of `counts[k]` finite floats; otherwise the results, as without.

    With `timeout`, each call has its own wall-clock timer (SIGALRM), so one slow call ends the batch as a
    call of its own would have ended; the worker's deadline for the whole batch stays the guard a candidate
    that tampers with the timer cannot pass."""
    fn = namespace.get(function)
    if not callable(fn):
        return {"ok": False, "kind": "call", "index": 0,
                "error": f"NameError: the program defines no function {function!r}"}
    timer = timeout is not None and timeout > 0
    previous = signal.signal(signal.SIGALRM, _timed_out) if timer else None
    try:
        return _calls(fn, arg_lists, max_depth, timeout if timer else None, counts)
    finally:
        if timer:
            signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


def _pick(result, count):
    """(index of the first highest, the numbers) when `result` is `count` finite floats, else None."""
    kind = type(result)
    if kind is not list:
        if getattr(kind, "__module__", "") != "numpy" or kind.__name__ != "ndarray":
            return None
        result = result.tolist()
    if len(result) != count or not all(type(v) is float for v in result):
        return None
    try:
        if not math.isfinite(math.fsum(result)):
            return None
    except (OverflowError, ValueError):  # a sum beyond float range, or inf - inf
        return None
    return result.index(max(result)), list(result)


def _calls(fn, arg_lists, max_depth, timeout, counts=None):
    """The batch's calls in order, each armed with `timeout` when it is not None."""
    results = []
    picks = [] if counts is not None and len(counts) == len(arg_lists) else None
    timer = timeout is not None
    for index, args in enumerate(arg_lists):
        try:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                result = fn(*args)
            finally:
                if timer:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except _CallTimedOut:
            return {"ok": False, "kind": "timeout", "index": index, "error": f"call {index} ran past {timeout:g} s"}
        except BaseException as exc:  # noqa: BLE001 (whatever the candidate raises is its reply)
            reply = _error(exc, "call")
            reply["index"] = index
            return reply
        picked = _pick(result, counts[index]) if picks is not None else None
        if picked is not None:
            picks.append(picked[0])
            results.append(picked[1])  # a copy, as _plain's: sent only if a later result cannot be picked
            continue
        picks = None
        try:
            results.append(_plain(result, 0, max_depth))
        except (TypeError, ValueError) as exc:
            return {"ok": False, "kind": "result", "index": index, "error": str(exc)[:_TRACE_CHARS]}
    return {"ok": True, "picked": picks} if picks is not None else {"ok": True, "result": results}


def serve(req_fd, resp_fd, layers, max_depth=64):
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
            except BaseException as exc:  # noqa: BLE001 (SystemExit from the candidate is a failure too)
                reply = _error(exc, "load")
        elif op == "call":
            try:
                fn = namespace.get(request["function"])
                if not callable(fn):
                    raise NameError(f"the program defines no function {request['function']!r}")
                result = fn(*request["args"], **request.get("kwargs", {}))
            except BaseException as exc:  # noqa: BLE001 (whatever the candidate raises is its reply)
                reply = _error(exc, "call")
            else:
                try:
                    reply = {"ok": True, "result": _plain(result, 0, max_depth)}
                except (TypeError, ValueError) as exc:
                    reply = {"ok": False, "kind": "result", "error": str(exc)[:_TRACE_CHARS]}
        elif op == "call_many":  # one round trip for many calls; the first failure ends the batch
            reply = _call_many(namespace, request["function"], request["arg_lists"], max_depth, request.get("timeout"),
                               request.get("pick_counts"))
        else:
            reply = {"ok": False, "kind": "protocol", "error": f"unknown op {op!r}"}
        reply["nonce"] = request.get("nonce")
        _send(resp_fd, reply)


