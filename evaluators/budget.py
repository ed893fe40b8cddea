"""Helpers for evaluators that call a candidate many times: replies checked, time charged in CPU."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sandboxes import CandidateTimeout, Picked, Session

__all__ = ["CallBudget", "OverBudget", "RejectedReply", "check_numbers"]

_MAX = sys.float_info.max


class RejectedReply(Exception):
    """The candidate broke the contract of its calls; the message says how (it becomes the feedback).

    `index` is the call of a batch whose reply was rejected (None for a single call)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class OverBudget(RejectedReply):
    """The candidate's calls together used more than their budget; the message says how much."""


def check_numbers(reply: object, n: int, what: str = "numbers") -> str | None:
    """Why `reply` is not a list of `n` finite numbers (bools excluded), or None when it is."""
    if type(reply) is list and len(reply) == n:  # the common case, checked fast; the loop below says why not
        for value in reply:
            kind = type(value)
            if not ((kind is float and value - value == 0.0) or (kind is int and -_MAX <= value <= _MAX)):
                break
        else:
            return None
    if not isinstance(reply, list):
        return f"returned {type(reply).__name__}, not a list of {n} {what}"
    if len(reply) != n:
        return f"returned {len(reply)} {what} for {n}"
    for k, value in enumerate(reply):
        if type(value) not in (int, float):
            return f"{what} {k} is {str(value)[:40]!r} ({type(value).__name__}), not a number"
        if not (math.isfinite(value) if type(value) is float else abs(value) <= sys.float_info.max):
            return f"{what} {k} is {str(value)[:40]}, not a finite number"
    return None


class CallBudget:
    """Calls into a session, charged against a budget of the candidate's CPU time (measured outside
    the sandbox, so a busy machine does not change the verdict; wall time where the sandbox cannot
    measure CPU). A call is charged the session's CPU since the session's previous charge
    (`Session.cpu_charge`): the first call its import too, every call what the candidate left running
    since the call before. The evaluator's own time between calls is never charged. The session is told
    the budget left (`Session.cpu_allowance`), so a call that runs past it is ended on its CPU time, not
    at the wall-clock kill.

    Example::

        budget = CallBudget(candidate, seconds=2.0)
        for item in items:     # RejectedReply: a reply that is not len(bins) numbers, or past 2 s of CPU
            priorities = budget.numbers("priority", item, bins, count=len(bins), timeout=1.0)
    """

    def __init__(self, session: Session, seconds: float) -> None:
        self.session = session
        self.budget = seconds
        self.spent = 0.0
        self.calls = 0
        self.clock = "CPU" if session.cpu_seconds() is not None else "wall"
        session.cpu_allowance = seconds

    def call(self, function: str, *args: Any, timeout: float | None = None) -> Any:
        """`session.call(...)`, then `OverBudget` once the calls together have used the budget."""
        wall = time.perf_counter()
        with self._ended_on_cpu(1):
            reply = self.session.call(function, *args, timeout=timeout)
        self._charge(wall, 1)
        return reply

    def call_many(self, function: str, arg_lists: Sequence[Sequence[Any]], timeout: float | None = None) -> list[Any]:
        """`session.call_many(...)` (one round trip, each call with its own `timeout`), the batch's CPU time
        charged as its calls' together; then `OverBudget` as for `call`."""
        wall = time.perf_counter()
        with self._ended_on_cpu(len(arg_lists)):
            replies = self.session.call_many(function, arg_lists, timeout=timeout)
        self._charge(wall, len(arg_lists))
        return replies

    @contextlib.contextmanager
    def _ended_on_cpu(self, calls: int) -> Iterator[None]:
        """`OverBudget` in place of the timeout of a session that the backend ended for its CPU time past the
        budget (`Session.cpu_allowance`); any other timeout as it was."""
        try:
            yield
        except CandidateTimeout:
            cpu = self.session.cpu_charge()
            if cpu is None or self.spent + cpu <= self.budget:
                raise
            self.spent += cpu
            self.calls += calls
            raise OverBudget(self._over()) from None

    def _over(self) -> str:
        return (f"too slow: {self.calls} calls used {self.spent:.2f} s of {self.clock} time, over the budget of "
                f"{self.budget:.2f} s")

    def _charge(self, wall: float, calls: int) -> None:
        """Add the session's CPU time since its last charge (its import and what it left running between calls
        included), or the wall time since `wall` where CPU cannot be read; `OverBudget` past the budget."""
        cpu = self.session.cpu_charge()
        self.spent += cpu if cpu is not None else time.perf_counter() - wall
        self.calls += calls
        self.session.cpu_allowance = max(0.0, self.budget - self.spent)
        if self.spent > self.budget:
            raise OverBudget(self._over())

    def numbers_many(self, function: str, arg_lists: Sequence[Sequence[Any]], counts: Sequence[int],
                     what: str = "numbers", timeout: float | None = None) -> list[list[float]]:
        """`call_many(...)`, then check reply k is `counts[k]` finite numbers; `RejectedReply` names the first
        that is not (its `index` is k)."""
        return self.receive_numbers(self.send_numbers(function, arg_lists, counts, what, timeout))

    def send_numbers(self, function: str, arg_lists: Sequence[Sequence[Any]], counts: Sequence[int],
                     what: str = "numbers", timeout: float | None = None, pick: bool = False) -> Any:
        """Start `numbers_many(...)` (`session.send_many`); `receive_numbers(ticket)` finishes it. Tickets are
        received in the order sent. With `pick`, a reply may come as the index of its first highest number
        (an int; `sandboxes.Picked`) where the caller needs only that: fewer bytes and no check here, since
        the sandbox picked it from `counts[k]` finite floats (any other reply comes whole and is checked)."""
        with self._ended_on_cpu(0):
            sent = self.session.send_many(function, arg_lists, timeout=timeout, pick_counts=counts if pick else None)
        return sent, function, list(counts), what

    def receive_numbers(self, ticket: Any) -> list[list[float]]:
        """The checked replies of the batch `send_numbers` returned `ticket` for, charged as `call_many`'s."""
        sent, function, counts, what = ticket
        wall = time.perf_counter()
        with self._ended_on_cpu(len(counts)):
            replies = self.session.receive_many(sent)
        self._charge(wall, len(counts))
        if isinstance(replies, Picked):
            return replies
        for k, (reply, count) in enumerate(zip(replies, counts)):
            problem = check_numbers(reply, count, what)
            if problem:
                raise RejectedReply(f"{function}(...) {problem}", index=k)
        return replies

    def numbers(self, function: str, *args: Any, count: int, what: str = "numbers",
                timeout: float | None = None) -> list[float]:
        """`call(...)`, then check the reply is `count` finite numbers; `RejectedReply` says how it is not."""
        reply = self.call(function, *args, timeout=timeout)
        problem = check_numbers(reply, count, what)
        if problem:
            raise RejectedReply(f"{function}(...) {problem}")
        return reply
