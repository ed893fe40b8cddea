"""Online episodes played side by side, so that one sandbox round trip serves a step of each.

An online problem asks the candidate one decision at a time, and each decision changes what the next
call sees, so the calls of one episode (one bin packing instance, one cluster trace) cannot be sent
together. Independent episodes can: `lockstep` sends the pending call of every unfinished episode in
one batch, and each episode gets only its own replies, in its own order. The candidate never sees an
episode's later items (they are not in the sandbox), so the online rule holds, and a candidate whose
calls do not depend on earlier calls decides every step exactly as it would with one call each.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

__all__ = ["Episode", "lockstep"]

T = TypeVar("T")

Episode = Generator[tuple, Any, T]
"""A generator that yields the arguments of its next call, is sent the reply, and returns its outcome."""


def lockstep(episodes: Sequence[Episode[T]], ask: Callable[[list[tuple]], list[Any]]) -> list[T]:
    """Play `episodes` together and return their outcomes, in order.

    Each round makes one `ask(arg_lists)` with the pending call of every unfinished episode (in the
    episodes' order) and sends reply k to its episode. An exception from `ask` that carries the `index`
    of the batch entry it is about (`RejectedReply`, `CandidateError` from `call_many`) gets `episode`,
    the index of that episode in `episodes`, before it propagates.

    Example::

        def countdown(n):                   # asks the candidate n times; returns the sum of its replies
            total = 0
            for k in range(n):
                total += yield (k,)
            return total

        lockstep([countdown(3), countdown(5)], lambda args: session.call_many("f", args))
    """
    outcomes: list[Any] = [None] * len(episodes)
    pending: dict[int, tuple] = {}
    for k, episode in enumerate(episodes):
        try:
            pending[k] = next(episode)
        except StopIteration as stop:
            outcomes[k] = stop.value
    while pending:
        keys = list(pending)
        try:
            replies = ask([pending[k] for k in keys])
        except Exception as exc:
            index = getattr(exc, "index", None)
            if isinstance(index, int) and 0 <= index < len(keys):
                exc.episode = keys[index]  # type: ignore[attr-defined]
            raise
        for k, reply in zip(keys, replies):
            try:
                pending[k] = episodes[k].send(reply)
            except StopIteration as stop:
                outcomes[k] = stop.value
                del pending[k]
    return outcomes
