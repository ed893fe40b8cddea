"""The classic online rules as priority functions for `packing.online_pack`, and first fit decreasing.

In `bins` the last entry is the empty bin; the other entries are open bins that can hold the item, in
opening order. Each rule opens a new bin only when no open bin can hold the item.
"""

from __future__ import annotations

import numpy as np

from problems.bin_packing.packing import Packing, online_pack

__all__ = ["ONLINE_RULES", "best_fit", "first_fit", "first_fit_decreasing", "worst_fit"]


def best_fit(item: int, bins: list[int]) -> np.ndarray:
    """The tightest bin (FunSearch's seed: `-(bins - item)`); the empty bin is the loosest of all."""
    return -(np.asarray(bins, dtype=float) - item)


def first_fit(item: int, bins: list[int]) -> np.ndarray:
    """The open bin opened first."""
    scores = -np.arange(len(bins), dtype=float)
    scores[-1] = -np.inf
    return scores


def worst_fit(item: int, bins: list[int]) -> np.ndarray:
    """The loosest open bin."""
    scores = np.asarray(bins, dtype=float)
    scores[-1] = -np.inf
    return scores


def first_fit_decreasing(items: tuple[int, ...], capacity: int) -> Packing:
    """Offline: sort the items largest first, then first fit (it sees every item before packing)."""
    return online_pack(sorted(items, reverse=True), capacity, first_fit)


ONLINE_RULES = {"first fit": first_fit, "best fit": best_fit, "worst fit": worst_fit}
