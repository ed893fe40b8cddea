"""Work started on a daemon thread, its result handed over as a `Future` (nothing waits for it at exit)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["in_background"]

T = TypeVar("T")


def in_background(function: Callable[..., T], *args: Any, name: str | None = None) -> Future[T]:
    """Run `function(*args)` on a daemon thread; its result, or what it raised, as a Future."""
    future: Future[T] = Future()

    def target() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001 (handed to whoever asks for the result)
            future.set_exception(exc)

    threading.Thread(target=target, name=name or f"evolve-{function.__name__}", daemon=True).start()
    return future
