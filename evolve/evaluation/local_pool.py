"""Evaluation slots in this process, one thread each: what scores programs while Ray starts.

The evaluator (trusted) runs in a thread of the controller; the candidate runs in the slot's sandbox,
as it does on a Ray worker. Slots are built when first needed, so a campaign that stops before Ray is
up built only what it used.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from evaluators.cascade import EvaluationResult
from evolve.config import ProblemConfig, SandboxConfig
from evolve.errors import ConfigError
from evolve.evaluation.pool import Pool, evaluator_raised, result_from_data, validation_failed
from evolve.evaluation.slot import EvaluationSlot

__all__ = ["LocalPool", "Retired"]

_RETIRED = object()  # in the free-slot queue once the pool is retired: waiters give up


class Retired(Exception):
    """The local pool was retired while the caller waited for a slot: evaluate elsewhere."""


class LocalPool(Pool):
    """`size` slots on threads of this process; `retire()` closes each slot once it is free."""

    def __init__(self, problem: ProblemConfig, sandbox: SandboxConfig, size: int, run_seed: int = 0) -> None:
        self.problem = problem
        self.sandbox = sandbox
        self.run_seed = run_seed  # the campaign's seed, for its evaluators
        self._size = size
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="evolve-local-slot")
        self._slots: list[EvaluationSlot] = []
        self._free: asyncio.Queue[EvaluationSlot | None] | None = None
        self._retired = False

    @property
    def size(self) -> int:
        """The number of slots."""
        return self._size

    def _queue(self) -> asyncio.Queue[EvaluationSlot | None]:
        if self._free is None:  # bound to the running event loop; None: a slot not built yet
            self._free = asyncio.Queue()
            for _ in range(self._size):
                self._free.put_nowait(None)
        return self._free

    async def _acquire(self) -> EvaluationSlot:
        slot = await self._queue().get()
        if slot is _RETIRED:
            self._queue().put_nowait(_RETIRED)  # for the next waiter
            raise Retired
        if slot is not None:
            return slot
        try:
            slot = await asyncio.wrap_future(self._executor.submit(EvaluationSlot, self.problem, self.sandbox,
                                                                  self.run_seed))
        except BaseException:
            self._queue().put_nowait(None)
            raise
        self._slots.append(slot)
        if slot.error:
            self._queue().put_nowait(slot)
            raise ConfigError(slot.error)
        return slot

    async def _run(self, call: Callable[[EvaluationSlot], Any]) -> Any:
        """Run `call(slot)` on a free slot's thread. The slot is free again when its thread is done, not
        when the caller stops waiting: a cancelled evaluation never shares its sandbox."""
        slot = await self._acquire()
        loop = asyncio.get_running_loop()
        future: Future = self._executor.submit(call, slot)
        future.add_done_callback(lambda _: self._release_threadsafe(loop, slot))
        return await asyncio.wrap_future(future)

    def _release_threadsafe(self, loop: asyncio.AbstractEventLoop, slot: EvaluationSlot) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody waits for slots any more
            loop.call_soon_threadsafe(self._release, slot)

    def _release(self, slot: EvaluationSlot) -> None:
        if self._retired:
            _close_in_background([slot])
            self._queue().put_nowait(_RETIRED)
        else:
            self._queue().put_nowait(slot)

    async def ready(self) -> None:
        """Build one slot (the evaluator and the sandbox); one line when either cannot be built."""
        slot = await self._acquire()
        self._release(slot)

    async def layers(self) -> dict[str, str]:
        """The sandbox's protection report."""
        return await self._run(lambda slot: slot.layers())

    async def evaluate(self, code: str) -> EvaluationResult:
        """Score `code` on a free slot."""
        try:
            data = await self._run(lambda slot: slot.evaluate(code))
        except (ConfigError, Retired):
            raise
        except Exception as exc:  # noqa: BLE001 (trusted evaluator code raised outside the cascade's guard)
            return evaluator_raised(exc, "".join(traceback.format_exception(exc)))
        return result_from_data(data)

    async def validate(self, code: str) -> EvaluationResult | None:
        """Score `code` on the validation data (None: the problem has none)."""
        try:
            data = await self._run(lambda slot: slot.validate(code))
        except (ConfigError, Retired):
            raise
        except Exception as exc:  # noqa: BLE001 (trusted validation code raised: logged, the campaign goes on)
            validation_failed(exc, "".join(traceback.format_exception(exc)))
            return None
        return EvaluationResult.from_dict(data) if data is not None else None

    def retire(self) -> None:
        """Close idle slots now and busy ones when their evaluation ends; callers waiting for a slot, and
        later ones, get `Retired`."""
        self._retired = True
        queue = self._queue()
        idle = []
        while not queue.empty():
            slot = queue.get_nowait()
            if slot is not None and slot is not _RETIRED:
                idle.append(slot)
        _close_in_background(idle)
        queue.put_nowait(_RETIRED)

    def shutdown(self) -> None:
        """Close every slot (a running evaluation's sandbox is killed) on a background thread: the caller
        does not wait for the fork servers' sessions to be reaped."""
        self._retired = True
        slots, self._slots = list(self._slots), []
        _close_in_background(slots)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _close_in_background(slots: list[EvaluationSlot]) -> None:
    """Close `slots` on a daemon thread: stopping a fork server waits for its sessions to be reaped."""
    def close() -> None:
        for slot in slots:
            with contextlib.suppress(Exception):
                slot.close()

    if slots:
        threading.Thread(target=close, name="evolve-local-close", daemon=True).start()
