"""Exact picker routing: the Ratliff–Rosenthal DP for single-block layouts, and Held–Karp for checks.

Ratliff & Rosenthal (Oper. Res. 31(3), 1983): a tour is a minimal multigraph on aisle and cross-aisle
edges that covers every pick and the depot, is connected and has even degrees. Stages alternate between
an aisle (how it is covered) and the cross-aisle step to the next aisle; a state is the degree class of
the current back node and front node (0, E even > 0, U odd) and the number of components. The tables
below are the ones in the problem spec; `ratliff_rosenthal` keeps the argmins, rebuilds the edge
multiset and walks its Euler circuit from the depot to get the visiting order.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from problems.warehouse_tsp.layout import Layout

__all__ = ["held_karp", "ratliff_rosenthal", "route_length"]

INF = float("inf")
FINAL = ("E01", "0E1", "EE1", "001")

# (state, option) -> state after the aisle step
AISLE = {
    "UU1": {"pass1": "EE1", "top": "UU1", "bottom": "UU1", "gap": "UU1", "pass2": "UU1", "void": "UU1"},
    "E01": {"pass1": "UU1", "top": "E01", "bottom": "EE2", "gap": "EE2", "pass2": "EE1", "void": "E01"},
    "0E1": {"pass1": "UU1", "top": "EE2", "bottom": "0E1", "gap": "EE2", "pass2": "EE1", "void": "0E1"},
    "EE1": {"pass1": "UU1", "top": "EE1", "bottom": "EE1", "gap": "EE1", "pass2": "EE1", "void": "EE1"},
    "EE2": {"pass1": "UU1", "top": "EE2", "bottom": "EE2", "gap": "EE2", "pass2": "EE1", "void": "EE2"},
    "000": {"pass1": "UU1", "top": "E01", "bottom": "0E1", "gap": "EE2", "pass2": "EE1", "void": "000"},
    "001": {"void": "001"},
}
# (state, (t back copies, b front copies)) -> state before the next aisle
CROSS = {
    "UU1": {(1, 1): "UU1"},
    "E01": {(2, 0): "E01", (2, 2): "EE2", (0, 0): "001"},
    "0E1": {(0, 2): "0E1", (2, 2): "EE2", (0, 0): "001"},
    "EE1": {(2, 0): "E01", (0, 2): "0E1", (2, 2): "EE1", (0, 0): "001"},
    "EE2": {(2, 2): "EE2"},
    "000": {(2, 0): "E01", (0, 2): "0E1", (0, 0): "000"},
    "001": {(0, 0): "001"},
}


def _options(ys: list[float], length: float) -> dict[str, float]:
    """Cost of each way to cover an aisle whose picks are at sorted `ys`."""
    if not ys:
        return {"void": 0.0, "pass1": length, "pass2": 2 * length}
    options = {"pass1": length, "pass2": 2 * length, "top": 2 * (length - ys[0]), "bottom": 2 * ys[-1]}
    if len(ys) >= 2:
        options["gap"] = 2 * (length - max(b - a for a, b in itertools.pairwise(ys)))
    return options


def ratliff_rosenthal(layout: Layout, depot_aisle: int, aisles, ys) -> tuple[float, list[int]]:
    """Shortest tour from the depot (front of `depot_aisle`) through every pick and back.

    Returns (length, visiting order as indices into the pick arrays). Single block, two-way aisles.
    """
    if not layout.is_simple:
        raise ValueError("the Ratliff-Rosenthal DP needs a single-block layout with two-way aisles")
    aisles = [int(a) for a in aisles]
    n, length, w = layout.n_aisles, layout.length, layout.aisle_spacing
    if not aisles:
        return 0.0, []
    picks_in: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    for i, (a, y) in enumerate(zip(aisles, ys)):
        picks_in[a].append((float(y), i))
    for lst in picks_in:
        lst.sort()
    # value[j] before aisle j and after it; back[...] keeps (previous state, move) for rebuilding
    before = {"000": 0.0}
    back_before: list[dict] = [{}]
    back_after: list[dict] = []
    after: dict[str, float] = {}
    for j in range(n):
        ys_j = [y for y, _ in picks_in[j]]
        options = _options(ys_j, length)
        after, arg = {}, {}
        for state, value in before.items():
            for option, new in AISLE[state].items():
                if option not in options:
                    continue
                cost = value + options[option]
                if cost < after.get(new, INF):
                    after[new], arg[new] = cost, (state, option)
        back_after.append(arg)
        if j == n - 1:
            break
        before, arg = {}, {}
        for state, value in after.items():
            for (t, b), new in CROSS[state].items():
                if j == depot_aisle and state[1] == "0" and b == 0:
                    continue  # the depot's front node would have no edge
                cost = value + (t + b) * w
                if cost < before.get(new, INF):
                    before[new], arg[new] = cost, (state, (t, b))
        back_before.append(arg)
    finals = [s for s in FINAL if s in after and not (depot_aisle == n - 1 and s[1] == "0")]
    if not finals:
        raise ValueError("no feasible tour (is the depot aisle inside the layout?)")
    end = min(finals, key=lambda s: after[s])
    return after[end], _rebuild(layout, depot_aisle, picks_in, back_before, back_after, end)


def _rebuild(layout, depot_aisle, picks_in, back_before, back_after, state) -> list[int]:
    """Turn the argmins into the edge multiset, then an Euler circuit from the depot."""
    edges: list[tuple[tuple, tuple]] = []
    for j in range(layout.n_aisles - 1, -1, -1):
        state, option = back_after[j][state]
        chain = [("a", j)] + [("p", i) for _, i in picks_in[j]] + [("b", j)]
        segments = list(itertools.pairwise(chain))
        if option == "pass1":
            edges += segments
        elif option == "pass2":
            edges += segments * 2
        elif option == "top":
            edges += segments[1:] * 2
        elif option == "bottom":
            edges += segments[:-1] * 2
        elif option == "gap":
            ys = [y for y, _ in picks_in[j]]
            k = max(range(len(ys) - 1), key=lambda i: ys[i + 1] - ys[i]) + 1  # the gap is segment k
            edges += (segments[:k] + segments[k + 1:]) * 2
        if j > 0:
            state, (t, b) = back_before[j][state]
            edges += [(("b", j - 1), ("b", j))] * t + [(("a", j - 1), ("a", j))] * b
    adjacency: dict[tuple, list[int]] = defaultdict(list)
    for e, (u, v) in enumerate(edges):
        adjacency[u].append(e)
        adjacency[v].append(e)
    used = [False] * len(edges)
    start = ("a", depot_aisle)
    stack, circuit = [start], []
    while stack:  # Hierholzer
        u = stack[-1]
        while adjacency[u] and used[adjacency[u][-1]]:
            adjacency[u].pop()
        if adjacency[u]:
            e = adjacency[u].pop()
            used[e] = True
            a, b = edges[e]
            stack.append(b if a == u else a)
        else:
            circuit.append(stack.pop())
    order, seen = [], set()
    for kind, i in reversed(circuit):
        if kind == "p" and i not in seen:
            seen.add(i)
            order.append(i)
    return order


def route_length(matrix: np.ndarray, order, start: int, end: int) -> float:
    """Length of start -> order... -> end under `matrix` (indices into the matrix)."""
    path = [start, *order, end]
    return float(sum(matrix[a, b] for a, b in itertools.pairwise(path)))


def held_karp(matrix: np.ndarray, start: int = 0, end: int | None = None) -> tuple[float, list[int]]:
    """Exact shortest path start -> every other node -> end (end=None: back to start). O(2^n n^2)."""
    end = start if end is None else end
    nodes = [i for i in range(len(matrix)) if i not in (start, end)]
    m = len(nodes)
    if m == 0:
        return float(matrix[start, end]), []
    full = (1 << m) - 1
    cost = np.full((1 << m, m), INF)
    parent = np.full((1 << m, m), -1, dtype=int)
    for i, node in enumerate(nodes):
        cost[1 << i, i] = matrix[start, node]
    for mask in range(1, 1 << m):
        row = cost[mask]
        for i in range(m):
            if not (mask >> i) & 1 or row[i] == INF:
                continue
            for k in range(m):
                if (mask >> k) & 1:
                    continue
                nxt = mask | (1 << k)
                c = row[i] + matrix[nodes[i], nodes[k]]
                if c < cost[nxt, k]:
                    cost[nxt, k], parent[nxt, k] = c, i
    totals = [cost[full, i] + matrix[nodes[i], end] for i in range(m)]
    last = int(np.argmin(totals))
    order, mask = [], full
    while last != -1:
        order.append(nodes[last])
        mask, last = mask ^ (1 << last), parent[mask, last]
    return float(min(totals)), order[::-1]
