"""The online packer (trusted): FunSearch's loop, with one empty bin standing for all unused ones.

For each item in arrival order, `priority(item, bins)` scores `bins`: the remaining capacities of the
open bins that can hold the item, in the order they were opened, followed by one empty bin (its
remaining capacity is the bin capacity). The item goes to the bin with the highest priority, the
first one on ties; choosing the empty bin opens a new bin. FunSearch passes every unused bin (one per
item) instead of one; element-wise priority functions pack identically either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Packing", "Priority", "online_pack", "packing_steps"]

Priority = Callable[[int, list[int]], Sequence[float]]


@dataclass(frozen=True)
class Packing:
    """What one online packing did.

    Attributes:
        bins: number of bins used.
        remaining: remaining capacity of each bin, in opening order.
        assignment: the bin (opening index) of each item, in arrival order.
        best_fit_agreement: items placed where best fit would have placed them (tightest bin, first on ties).
        voluntary_new_bins: items put in a new bin although an open bin could hold them.
    """

    bins: int
    remaining: tuple[int, ...]
    assignment: tuple[int, ...]
    best_fit_agreement: int
    voluntary_new_bins: int


def online_pack(items: Sequence[int], capacity: int, priority: Priority) -> Packing:
    """Pack `items` one at a time with `priority` (see the module docstring); `priority` may raise."""
    steps = packing_steps(items, capacity)
    request = next(steps)
    while True:
        try:
            request = steps.send(priority(*request))
        except StopIteration as done:
            return done.value


def packing_steps(items: Sequence[int], capacity: int) -> Generator[tuple[int, list[int]], Sequence[float] | int,
                                                                   Packing]:
    """`online_pack` as an episode (`evaluators.lockstep`): yields `(item, bins)` for each item, is sent the
    priorities, returns the `Packing`."""
    remaining = np.empty(len(items), dtype=np.int64)
    opened = 0
    assignment = []
    agree = voluntary = 0
    for item in items:
        if item > capacity:
            raise ValueError(f"item {item} exceeds the bin capacity {capacity}")
        fits = (remaining[:opened] >= item).nonzero()[0]
        offered = remaining[fits].tolist()
        offered.append(capacity)
        choice = _first_highest((yield int(item), offered))
        tightest = offered.index(min(offered))  # the first of the tightest: best fit's choice
        agree += choice == tightest
        if choice == len(fits):
            voluntary += len(fits) > 0
            remaining[opened] = capacity - item
            assignment.append(opened)
            opened += 1
        else:
            b = int(fits[choice])
            remaining[b] -= item
            assignment.append(b)
    return Packing(opened, tuple(int(r) for r in remaining[:opened]), tuple(assignment), agree, voluntary)


def _first_highest(priorities: Sequence[float] | int) -> int:
    """The index of the first of the highest priorities, as numpy's argmax of them as floats gives it; a list
    of finite floats (what a checked reply is) without numpy's conversion; an int is that index, picked in
    the sandbox (`CallBudget.send_numbers(pick=True)`)."""
    if type(priorities) is int:
        return priorities
    if type(priorities) is list and priorities and all(type(p) is float for p in priorities):
        try:
            finite = math.isfinite(math.fsum(priorities))
        except (OverflowError, ValueError):  # a sum beyond float range, or inf - inf
            finite = False
        if finite:
            return priorities.index(max(priorities))
    return int(np.asarray(priorities, dtype=float).argmax())
