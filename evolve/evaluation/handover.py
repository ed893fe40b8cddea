"""Ray off the critical path: score programs in this process while Ray starts, then hand over.

A private local Ray instance takes seconds to start (more with the dashboard or metrics agents). The
campaign does not wait for it: a `LocalPool` scores the initial program and the first children while a
background thread starts Ray and its evaluation actors; once they are all up, new evaluations go to Ray
and the local slots close as they come free. A private instance starts only after `ray.start_after`
seconds, and only while the campaign is expected to run `ray.start_min_eta` seconds more: a campaign
that ends sooner never pays its start-up.

Ray accelerates, never endangers: a start that fails, or a Ray lost later (`RayLost`: its head stopped
answering, no worker left), is one line on the terminal and in campaign.log (logger `evolve.ray`, which
`evolve status` reads), and the campaign goes on in local slots; an evaluation Ray lost runs again there.
Ray is tried again after `RETRY_AFTER` seconds, doubling, where that can help (not after a version or
token mismatch, nor a setting of evolve's that is wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from evaluators.cascade import EvaluationResult
from evolve.errors import EvolveError, RayLost
from evolve.evaluation.local_pool import LocalPool, Retired
from evolve.evaluation.pool import Pool

__all__ = ["HandoverPool"]

_log = logging.getLogger("evolve.engine.campaign")
RAY_LOG = "evolve.ray"  # the logger of Ray's state changes (faults, workers up): `evolve status` reads its last line
_ray_log = logging.getLogger(RAY_LOG)
SLOW_START = 600.0  # seconds after which a start still under way is said to be slow
RETRY_AFTER = (60.0, 120.0, 240.0, 480.0, 960.0)  # seconds before each new try of Ray, after a fault that may pass
_MISMATCH = ("version mismatch", "authoriz", "authenticat", "token")  # Ray's causes that a new try cannot mend


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
                 delay: float = 0.0, min_eta: float | None = None, gated: bool = False,
                 retry_after: Sequence[float] = RETRY_AFTER) -> None:
        self._begun = threading.Event()
        if not gated:
            self._begun.set()
        self._delay = delay
        self._min_eta = min_eta
        self._eta: Callable[[], float | None] = lambda: None
        self._closing = threading.Event()
        self._local = local
        self._remote: Pool | None = None
        self._retries = iter(retry_after)
        self._lost = threading.Event()  # Ray was lost: the start thread drops its pool, then tries again
        self._closed = False
        self._handed_over = False
        self._guard = threading.Lock()
        self._wait: float | None = None  # seconds before the next try of Ray (None: none)
        self._began = time.monotonic()
        self._ended = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._start, args=(start, after), name="evolve-ray-start",
                                        daemon=True)
        self._thread.start()

    def _start(self, start: Callable[[], Pool], after: Callable[[], None] | None) -> None:
        """Start Ray once the campaign is ready for it, then again after each fault that may pass."""
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
            while self._attempt(start):
                if self._closing.wait(self._wait) or self._ends_soon():
                    return
        finally:
            self._ended.set()

    def _attempt(self, start: Callable[[], Pool]) -> bool:
        """Start Ray on a thread of its own and use its pool until it is lost; True to try again (after
        `self._wait` seconds). Ray's processes die with the thread that started them: the thread stays
        while its pool is used, and ends (taking a failed start's leftovers with it) when it is not."""
        outcome: list[Pool | BaseException] = []
        done, release = threading.Event(), threading.Event()

        def run() -> None:
            try:
                outcome.append(start())
            except BaseException as exc:  # noqa: BLE001 (whatever Ray raised: one line, the local slots go on)
                outcome.append(exc)
            done.set()
            release.wait()  # set only once Ray failed or was lost: a private instance otherwise lives with the process

        # not niced (Ray's processes would inherit it): on a loaded machine a niced raylet and agents miss their
        # start-up deadlines, however long evolve waits for them; Ray runs its workers at 15 itself
        threading.Thread(target=run, name="evolve-ray-node", daemon=True).start()
        if not done.wait(SLOW_START):  # Ray's own waits are long, some endless (a cluster that never answers)
            _ray_log.warning("Ray has not started after %g s (still trying); evaluations go on in this process's %s",
                             SLOW_START, _slots(self._local.size))
            done.wait()
        remote = outcome[0]
        if isinstance(remote, BaseException):
            release.set()
            again = not self._closing.is_set() and _may_pass(remote)
            if not self._closing.is_set():
                self._fault(f"Ray did not start: {_one_line(remote)}", again)
            self._ended.set()
            return again and self._wait is not None
        with self._guard:
            closed = self._closed
            if not closed:
                self._remote = remote
                self._lost.clear()
        if closed:  # the campaign ended first: nobody will use these workers
            remote.shutdown()
            return False
        _ray_log.info("Ray's %d evaluation workers are up after %.1f s; evaluations move to them", remote.size,
                      time.monotonic() - self._began)
        self._ended.set()
        if self._loop is not None:  # callers waiting for a local slot move over now
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._pool)
        while not self._lost.wait(1.0):  # in use until it is lost or the campaign ends
            if self._closing.is_set():
                return False
        with contextlib.suppress(Exception):  # a lost Ray: this process disconnects from it
            remote.shutdown()
        release.set()
        return not self._closing.is_set() and self._wait is not None

    def _fault(self, cause: str, again: bool) -> None:
        """Say, once, that Ray cannot be used now and that the local slots go on; plan the next try."""
        self._wait = next(self._retries, None) if again else None
        _ray_log.warning("%s; evaluations go on in this process's %s%s", cause, _slots(self._local.size),
                         f"; Ray is tried again in {self._wait:g} s" if self._wait is not None else
                         "; Ray is not tried again in this campaign" if again else "")

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
        """Block until the background start's first try has ended (for tests and embedding); True when it has."""
        return self._ended.wait(timeout)

    async def _call(self, method: str, *args: str):
        self._loop = asyncio.get_running_loop()
        while True:
            pool = self._pool()
            try:
                return await getattr(pool, method)(*args)
            except Retired:  # Ray's workers came up while this call waited for a local slot
                continue
            except RayLost as exc:  # never committed: it runs again locally
                if self._closed:  # the campaign is ending: no slot is left to run it
                    raise
                self._fall_back(pool, exc)

    def _fall_back(self, lost: Pool, cause: RayLost) -> None:
        """Ray's pool `lost` is gone: new local slots take its place (the old ones were retired), once."""
        with self._guard:
            if lost is not self._remote or self._closed:
                return  # another evaluation met the loss first, or the campaign ended meanwhile
            self._remote = None
            self._handed_over = False
            old = self._local
            self._local = LocalPool(old.problem, old.sandbox, old.size, run_seed=old.run_seed)
        self._fault(f"Ray was lost: {cause}", True)
        self._lost.set()

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


def _one_line(exc: BaseException) -> str:
    """An exception as one line: evolve's own as its message, Ray's with its type."""
    text = " ".join(str(exc).split())[:300]
    return text if isinstance(exc, EvolveError) else f"{type(exc).__name__}: {text}"


def _may_pass(exc: BaseException) -> bool:
    """Whether a new try of Ray's start may succeed: not after a mismatch with the cluster, nor after one of
    evolve's settings proved wrong (but workers not yet up within `ray.ready_timeout` may come up later)."""
    text = str(exc).lower()
    if isinstance(exc, EvolveError):
        return "ray.ready_timeout" in text
    return not any(word in text for word in _MISMATCH)


def _slots(n: int) -> str:
    return f"{n} slot{'s' * (n != 1)}"
