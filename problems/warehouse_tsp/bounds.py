"""A lower bound on the shortest route where no exact optimum is at hand: the Held–Karp 1-tree bound.

It relaxes every side constraint (capacity, precedence) and one-way aisles (distances of the two-way
layout), so it is valid for every variant. A route from start to a different end is a cycle through a
zero-length end-to-start edge.
"""

from __future__ import annotations

import numpy as np

from problems.warehouse_tsp.instances import Tour

__all__ = ["lower_bound"]


def _one_tree(weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Minimum 1-tree: a spanning tree on nodes 1..n-1 (Prim) plus node 0's two cheapest edges."""
    n = len(weights)
    degree = np.zeros(n, dtype=int)
    cost = 0.0
    if n > 2:
        in_tree = np.zeros(n, dtype=bool)
        in_tree[0] = in_tree[1] = True
        best = weights[1].copy()
        link = np.full(n, 1)
        for _ in range(n - 2):
            candidates = np.where(in_tree, np.inf, best)
            v = int(candidates.argmin())
            cost += candidates[v]
            degree[v] += 1
            degree[link[v]] += 1
            in_tree[v] = True
            closer = weights[v] < best
            best = np.where(closer, weights[v], best)
            link = np.where(closer, v, link)
    two = np.argsort(weights[0, 1:])[:2] + 1
    cost += weights[0, two].sum()
    degree[0] += 2
    degree[two] += 1
    return float(cost), degree


def lower_bound(tour: Tour, upper: float, iterations: int = 150) -> float:
    """Held–Karp bound by subgradient ascent; `upper` is any feasible route length (step sizes)."""
    if tour.n == 0:
        return float(tour.matrix[0, -1]) if tour.start != tour.end else 0.0
    relaxed = tour.layout.relaxed()
    aisles = np.array([tour.start[0], *tour.aisles, tour.end[0]])
    ys = np.array([tour.start[1], *tour.ys, tour.end[1]])
    matrix = relaxed.distances(aisles, ys)
    matrix = np.minimum(matrix, matrix.T)
    if tour.start == tour.end:
        matrix = matrix[:-1, :-1]
    else:
        matrix = matrix.copy()
        matrix[0, -1] = matrix[-1, 0] = 0.0
    n = len(matrix)
    if n <= 2:
        return float(matrix[0, 1] * 2) if n == 2 else 0.0
    pi = np.zeros(n)
    best = -np.inf
    step = 2.0
    for it in range(iterations):
        weights = matrix + pi[:, None] + pi[None, :]
        np.fill_diagonal(weights, np.inf)
        cost, degree = _one_tree(weights)
        value = cost - 2 * pi.sum()
        if value > best:
            best = value
        g = degree - 2
        if not g.any():
            break
        pi += step * max(upper - value, 1e-9) / float((g ** 2).sum()) * g
        if it % 20 == 19:
            step /= 2
    return float(min(best, upper))
