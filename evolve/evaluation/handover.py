"""Ray off the critical path: score programs in this process while Ray starts, then hand over.

A private local Ray instance takes seconds to start (more with the dashboard or metrics agents). The
campaign does not wait for it: a `LocalPool` scores the initial program and the first children while a
background thread starts Ray and its evaluation actors; once they are all up, new evaluations go to Ray
and the local slots close as they come free. A private instance starts only after `ray.start_after`
seconds, and only while the campaign is expected to run `ray.start_min_eta` seconds more: a campaign
that ends sooner never pays its start-up. When Ray cannot start, the next evaluation raises the reason
(one line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from evaluators.cascade import EvaluationResult
from evolve.errors import ConfigError, EvolveError
from evolve.evaluation.local_pool import LocalPool, Retired
from evolve.evaluation.pool import Pool

__all__ = ["HandoverPool"]

_log = logging.getLogger("evolve.engine.campaign")
# Ray's start-up takes seconds of CPU (its GCS, raylet and agents): below the campaign's own work, so that
# on a small machine it does not slow the programs being scored meanwhile (Ray runs its workers at 15)
_RAY_NICENESS = 10


class HandoverPool(Pool):
    """A `Pool` that is `local` until `start()` (run on a background thread) returns Ray's pool.

    `start` builds the remote pool and waits until its workers are up; it runs on a background thread,
    after `after` returns (what the first proposal needs first, such as the LLM SDK's import: Ray's start
    would take CPU from it), after `begin()` for a `gated` pool (the campaign's first iteration is done:
    Ray's import and connection would otherwise delay the first requests), once `delay` seconds have
    passed (a campaign that ends sooner never starts it), and only once the campaign's ETA (`watch`) is
    unknown or at least `min_eta` seconds.
    """

    def __init__(self, local: LocalPool, start: Callable[[], Pool], after: Callable[[], None] | None = None,
                 delay: float = 0.0, min_eta: float | None = None, gated: bool = False) -> None:
        self._begun = threading.Event()
        if not gated:
            self._begun.set()
        self._delay = delay
        self._min_eta = min_eta
        self._eta: Callable[[], float | None] = lambda: None
        self._closing = threading.Event()
        self._local = local
        self._remote: Pool | None = None
        self._error: EvolveError | None = None
        self._closed = False
        self._handed_over = False
        self._guard = threading.Lock()
        self._began = time.monotonic()
        self._ended = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._start, args=(start, after), name="evolve-ray-start",
                                        daemon=True)
        self._thread.start()

    def _start(self, start: Callable[[], Pool], after: Callable[[], None] | None) -> None:
        with contextlib.suppress(OSError):  # niceness is per thread on Linux, and Ray's processes inherit
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _RAY_NICENESS)  # this thread's
        try:
            if after is not None:
                after()
            self._begun.wait()
            if self._closing.is_set():
                return  # the campaign ended before its first iteration was done
            if self._delay > 0:
                _log.info("Ray starts %g s after the set-up began if the campaign is still running%s "
                          "(ray.start_after); the evaluations run in this process's slots meanwhile", self._delay,
                          "" if self._min_eta is None else f" and has {self._min_eta:g} s or more to go")
            if self._closing.wait(max(0.0, self._began + self._delay - time.monotonic())) or self._ends_soon():
                return  # the campaign ended first, or will end before Ray pays off: Ray was never needed
            remote = start()
        except EvolveError as exc:
            self._error = exc
        except BaseException as exc:  # noqa: BLE001 (Ray's own failure: still one line for the user)
            self._error = ConfigError(f"Ray did not start: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        else:
            with self._guard:
                closed = self._closed
                if not closed:
                    self._remote = remote
            if closed:  # the campaign ended first: nobody will use these workers
                remote.shutdown()
            else:
                _log.info("Ray's %d evaluation workers are up after %.1f s; evaluations move to them", remote.size,
                          time.monotonic() - self._began)
                if self._loop is not None:  # callers waiting for a local slot move over now
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(self._pool)
        finally:
            self._ended.set()
        if self._error is None:
            threading.Event().wait()  # Ray's processes die with the thread that started them: this one stays

    def begin(self) -> None:
        """The campaign's first iteration is done: a gated pool may start Ray now."""
        self._begun.set()

    def watch(self, seconds_left: Callable[[], float | None]) -> None:
        """Tell the pool how to read the campaign's seconds left (None: not known yet)."""
        self._eta = seconds_left

    def _ends_soon(self) -> bool:
        """Wait while the campaign is expected to end within `min_eta`; True when it ended meanwhile."""
        said = False
        while self._min_eta is not None and (left := self._eta()) is not None and left < self._min_eta:
            if not said:
                said = True
                _log.info("Ray waits: the campaign is expected to end in %.0f s, sooner than its start-up would "
                          "pay off (ray.start_min_eta=%g)", left, self._min_eta)
            if self._closing.wait(1.0):
                return True
        return False

    def _pool(self) -> Pool:
        if self._error is not None:
            raise self._error
        if self._remote is not None:
            if not self._handed_over:
                self._handed_over = True
                self._local.retire()
            return self._remote
        return self._local

    @property
    def size(self) -> int:
        """Slots of the pool in use now (Ray's may differ from the local guess)."""
        return self._remote.size if self._remote is not None else self._local.size

    @property
    def remote_ready(self) -> bool:
        """Whether evaluations go to Ray's workers now."""
        return self._remote is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background start has ended (for tests and embedding); True when it has."""
        return self._ended.wait(timeout)

    async def _call(self, method: str, *args: str):
        self._loop = asyncio.get_running_loop()
        try:
            return await getattr(self._pool(), method)(*args)
        except Retired:  # Ray's workers came up while this call waited for a local slot
            return await getattr(self._pool(), method)(*args)

    async def ready(self) -> None:
        """The local slot's evaluator and sandbox are built (Ray's are checked when they come up)."""
        await self._call("ready")

    async def layers(self) -> dict[str, str]:
        """The sandbox's protection report."""
        return await self._call("layers")

    async def evaluate(self, code: str) -> EvaluationResult:
        """Score `code` where a slot is: locally until Ray's workers are up."""
        return await self._call("evaluate", code)

    async def validate(self, code: str) -> EvaluationResult | None:
        """Score `code` on the validation data."""
        return await self._call("validate", code)

    def shutdown(self) -> None:
        """Release the local slots and Ray's workers; a start still under way shuts its pool down itself."""
        self._closing.set()
        self._begun.set()  # a start still waiting for the campaign's first iteration gives up
        with self._guard:
            self._closed = True
            remote, self._remote = self._remote, None
        self._local.shutdown()
        if remote is not None:
            remote.shutdown()
