"""The classic online rules as priority functions for `packing.online_pack`, and first fit decreasing.

In `bins` the last entry is the empty bin; the other entries are open bins that can hold the item, in
opening order. Each rule opens a new bin only when no open bin can hold the item.
"""

from __future__ import annotations

import numpy as np

from problems.bin_packing.packing import Packing, online_pack

__all__ = ["FUNSEARCH_RULES", "ONLINE_RULES", "best_fit", "first_fit", "first_fit_decreasing", "funsearch_or",
           "funsearch_weibull", "worst_fit"]


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


# FunSearch's published heuristics (Romera-Paredes et al., Nature 2024; the notebook's OR3 and Weibull 5k
# functions), written here from their formulas: a step function of the slack, and a Weibull score of the
# remaining capacities taken as differences between neighbouring bins.
_OR_SLACK = np.array([2, 3, 5, 7, 9, 12, 15, 18, 20, 21])
_OR_VALUE = np.array([4.0, 3.0, 2.0, 1.0, 0.9, 0.95, 0.97, 0.98, 0.98, 0.98, 0.99])


def funsearch_or(item: int, bins: list[int]) -> np.ndarray:
    """FunSearch's OR heuristic: a priority from the slack a bin would keep (near-perfect fits first)."""
    slack = np.asarray(bins, dtype=float) - item
    return _OR_VALUE[np.searchsorted(_OR_SLACK, slack, side="left")]


def funsearch_weibull(item: int, bins: list[int]) -> np.ndarray:
    """FunSearch's Weibull heuristic: a score of each capacity against the largest, sign-flipped where the
    bin is looser than the item, then differenced with the bin before it."""
    b = np.asarray(bins, dtype=float)
    score = (b - b.max()) ** 2 / item + b ** 2 / item ** 2 + b ** 2 / item ** 3
    score = np.where(b > item, -score, score)
    return np.concatenate([score[:1], score[1:] - score[:-1]])


ONLINE_RULES = {"first fit": first_fit, "best fit": best_fit, "worst fit": worst_fit}
FUNSEARCH_RULES = {"or": funsearch_or, "weibull": funsearch_weibull}
"""FunSearch's heuristic for each instance family (the one it evolved on that family's data)."""
