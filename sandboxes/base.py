"""The sandbox interface: a session is an isolated interpreter with one candidate program loaded."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from sandboxes.errors import CandidateError
from sandboxes.limits import SandboxLimits

__all__ = ["Array", "Picked", "Sandbox", "Session"]


class Array(list):
    """A numpy array the candidate returned, as a list (with `Session.keep_tuples`): the sandbox layer
    imports no numpy, so a caller that wants the array back calls `numpy.asarray` on it."""


class Picked(list):
    """The index of each call's first highest number, picked in the sandbox (`Session.send_many` with
    `pick_counts`): what an evaluator that only takes the argmax needs, without every number on the wire."""


class Session(abc.ABC):
    """One candidate loaded in one isolated interpreter.

    Calls go in as JSON and come back as JSON: arguments and results must be plain data (dict, list,
    str, int, float, bool, None; no NaN or infinity). The candidate's tuples come back as lists, or as
    tuples when `keep_tuples` is set (the OpenEvolve and ShinkaEvolve adapters set it: their evaluators
    unpack and check tuples), and then numpy arrays as `Array` lists. A session is used by one thread at
    a time. After a timeout or a crash every further call raises `CandidateError`.
    """

    keep_tuples: bool = False
    _cpu_charged: float = 0.0  # the `cpu_seconds` reading of the last `cpu_charge`
    cpu_allowance: float | None = None
    """CPU seconds the candidate may use past the last `cpu_charge` before the backend ends it at once, as
    over budget, rather than at a wall-clock kill (`CallBudget` sets it; a backend that cannot watch CPU
    time ignores it)."""

    @abc.abstractmethod
    def call(self, function: str, *args: Any, timeout: float | None = None) -> Any:
        """Call `function(*args)` inside the sandbox and return its plain-data result."""

    def call_kwargs(self, function: str, args: Sequence[Any], kwargs: dict[str, Any],
                    timeout: float | None = None) -> Any:
        """Call `function(*args, **kwargs)`; this default passes no keyword arguments (the fork-server
        backends do)."""
        if kwargs:
            raise TypeError(f"{function}(): this sandbox backend cannot pass keyword arguments; pass them by position")
        return self.call(function, *args, timeout=timeout)

    def call_many(self, function: str, arg_lists: Sequence[Sequence[Any]], timeout: float | None = None) -> list[Any]:
        """Call `function` once per argument list; raise `CandidateError` on the first failure, naming it.

        `timeout` is per call. The fork-server backends send the whole batch in one round trip (each call
        still ends at its own `timeout`, and the batch at `timeout` times its length); this default makes
        one call each."""
        return [self.call(function, *args, timeout=timeout) for args in arg_lists]

    def send_many(self, function: str, arg_lists: Sequence[Sequence[Any]], timeout: float | None = None,
                  pick_counts: Sequence[int] | None = None) -> Any:
        """Start a `call_many` batch and return a ticket for `receive_many`, which returns its results or raises
        what `call_many` would have. The fork-server backends write the batch and return at once, so the
        candidate computes while the caller prepares another batch; tickets are received in the order sent,
        and a batch sent must hold nothing that depends on the replies of a batch not yet received. This
        default runs the batch at once.

        With `pick_counts`, a backend may answer `Picked`: for each call the index of the first of its highest
        numbers (numpy's argmax), when every result k is `pick_counts[k]` finite floats; otherwise, and on this
        default, the results. Any index below `pick_counts[k]` is one a program could have chosen, so the
        sandbox side may pick."""
        try:
            return self.call_many(function, arg_lists, timeout=timeout), None
        except CandidateError as exc:
            return None, exc

    def receive_many(self, ticket: Any) -> list[Any]:
        """The results of the batch `send_many` returned `ticket` for (see there)."""
        results, error = ticket
        if error is not None:
            raise error
        return results

    def cpu_seconds(self) -> float | None:
        """CPU time of everything the session has run so far (its import on), measured outside the sandbox
        (None when the backend cannot measure it). Charge time budgets in differences of this, not in wall
        time, or with `cpu_charge`."""
        return None

    def cpu_charge(self) -> float | None:
        """CPU time the session used since the previous `cpu_charge` (the first: since it was ready, so its
        import is in it), None when the backend cannot measure it. Charged this way, nothing the candidate
        runs escapes a budget: not its import, nor what it computes between calls or leaves running."""
        now = self.cpu_seconds()
        if now is None:
            return None
        charged, self._cpu_charged = self._cpu_charged, now
        return now - charged

    @property
    @abc.abstractmethod
    def output(self) -> str:
        """The last few kilobytes the candidate wrote to stdout and stderr."""


class Sandbox(abc.ABC):
    """A place where untrusted code runs. Subclass it for a new backend.

    `session()` must start from a clean state each time: nothing one candidate does may be seen by the
    next. `layers()` reports which protections are active, so a missing one is said, not hidden.

    Example::

        class InlineSandbox(Sandbox):            # trusted code only: no isolation at all
            def session(self, source, limits):
                ...
            def layers(self):
                return {"isolation": "none: runs in this process"}
    """

    @abc.abstractmethod
    def session(self, source: str, limits: SandboxLimits) -> AbstractContextManager[Session]:
        """Load `source` in a fresh isolated interpreter and yield a `Session` for calls into it."""

    @abc.abstractmethod
    def layers(self) -> dict[str, str]:
        """Return each protection layer's name with what is active (or why it is not)."""

    def warm(self) -> None:
        """Start what the first session needs (a fork server, say) ahead of it; optional."""

    def close(self) -> None:
        """Release what the backend holds (a fork server, a container); optional."""
