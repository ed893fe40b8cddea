"""Online episodes played side by side, so that one sandbox round trip serves a step of each.

An online problem asks the candidate one decision at a time, and each decision changes what the next
call sees, so the calls of one episode (one bin packing instance, one cluster trace) cannot be sent
together. Independent episodes can: `lockstep` sends the pending call of every unfinished episode in
one batch, and each episode gets only its own replies, in its own order. The candidate never sees an
episode's later items (they are not in the sandbox), so the online rule holds, and a candidate whose
calls do not depend on earlier calls decides every step exactly as it would with one call each.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

__all__ = ["Episode", "lockstep"]

T = TypeVar("T")

Episode = Generator[tuple, Any, T]
"""A generator that yields the arguments of its next call, is sent the reply, and returns its outcome."""


def lockstep(episodes: Sequence[Episode[T]], send: Callable[[list[tuple]], Any],
             receive: Callable[[Any], list[Any]] | None = None, lanes: int = 1) -> list[T]:
    """Play `episodes` together and return their outcomes, in order.

    Each round sends one batch with the pending call of every unfinished episode (in the episodes'
    order) and gives reply k to its episode. Without `receive`, `send(arg_lists)` returns the replies.
    With it, `send` only starts a batch and returns a ticket, `receive(ticket)` waits for the replies,
    and the episodes are dealt into `lanes` lanes whose batches overlap: while the candidate answers
    one lane, the replies of the other are applied and its next batch is sent, so neither side waits
    for the other. An episode has one call in flight at most, so its calls keep their order.

    An exception from `send` or `receive` that carries the `index` of the batch entry it is about
    (`RejectedReply`, `CandidateError` from `call_many`) gets `episode`, the index of that episode in
    `episodes`, before it propagates.

    Example::

        def countdown(n):                   # asks the candidate n times; returns the sum of its replies
            total = 0
            for k in range(n):
                total += yield (k,)
            return total

        lockstep([countdown(3), countdown(5)], lambda args: session.call_many("f", args))
        lockstep([countdown(3), countdown(5)], lambda args: session.send_many("f", args), session.receive_many, 2)
    """
    if receive is None:
        receive, lanes = (lambda replies: replies), 1
    outcomes: list[Any] = [None] * len(episodes)
    pending: dict[int, tuple] = {}
    for k, episode in enumerate(episodes):
        try:
            pending[k] = next(episode)
        except StopIteration as stop:
            outcomes[k] = stop.value
    lanes = max(1, min(lanes, len(pending)))
    in_flight: collections.deque[tuple[list[int], Any]] = collections.deque()

    def start(keys: list[int]) -> None:
        if keys:
            in_flight.append((keys, _named(keys, send, [pending[k] for k in keys])))

    for lane in range(lanes):
        start([k for k in pending if k % lanes == lane])
    while in_flight:
        keys, ticket = in_flight.popleft()
        replies = _named(keys, receive, ticket)
        going = []
        for k, reply in zip(keys, replies):
            try:
                pending[k] = episodes[k].send(reply)
                going.append(k)
            except StopIteration as stop:
                outcomes[k] = stop.value
                del pending[k]
        start(going)
    return outcomes


def _named(keys: list[int], step: Callable[[Any], Any], arg: Any) -> Any:
    """`step(arg)`; an exception about batch entry `index` is told its episode, `keys[index]`."""
    try:
        return step(arg)
    except Exception as exc:
        index = getattr(exc, "index", None)
        if isinstance(index, int) and 0 <= index < len(keys):
            exc.episode = keys[index]  # type: ignore[attr-defined]
        raise
