"""Warehouse layouts and the shortest-path distances between points in them.

A layout has `n_aisles` parallel aisles, `aisle_spacing` metres apart, each `blocks * block_length`
metres long, crossed by `blocks + 1` cross-aisles (front at y = 0, back at the far end, and the middle
ones between blocks). A point is (aisle, y). Travel is along aisles and cross-aisles only. An aisle may
be one-way (`+1`: front to back only, `-1`: back to front only); cross-aisles are always two-way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """A rectangular warehouse of parallel aisles.

    Attributes:
        n_aisles: number of aisles.
        block_length: metres of one block of an aisle (cells x pitch).
        aisle_spacing: metres between the centres of neighbouring aisles.
        blocks: blocks along each aisle (1 = single block: front and back cross-aisles only).
        one_way: direction per aisle (0 two-way, +1 front-to-back, -1 back-to-front); empty: all two-way.
    """

    n_aisles: int = 12
    block_length: float = 30.0
    aisle_spacing: float = 4.0
    blocks: int = 1
    one_way: tuple[int, ...] = field(default_factory=tuple)

    @property
    def length(self) -> float:
        """Length of an aisle from the front to the back cross-aisle."""
        return self.blocks * self.block_length

    @property
    def cross_aisles(self) -> list[float]:
        """The y of every cross-aisle, front first."""
        return [b * self.block_length for b in range(self.blocks + 1)]

    @property
    def is_simple(self) -> bool:
        """Single block with two-way aisles: the closed form and the exact DP apply."""
        return self.blocks == 1 and not any(self.one_way)

    def direction(self, aisle: int) -> int:
        """The aisle's direction: 0 two-way, +1 front-to-back, -1 back-to-front."""
        return self.one_way[aisle] if self.one_way else 0

    def relaxed(self) -> Layout:
        """The same layout with every aisle two-way (shorter or equal distances: for lower bounds)."""
        return Layout(self.n_aisles, self.block_length, self.aisle_spacing, self.blocks)

    def distances(self, aisles: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Matrix of shortest travel distances from point a to point b (rows: from, columns: to)."""
        aisles = np.asarray(aisles, dtype=int)
        ys = np.asarray(ys, dtype=float)
        if self.is_simple:
            return self._closed_form(aisles, ys)
        return self._graph_distances(aisles, ys)

    def _closed_form(self, aisles: np.ndarray, ys: np.ndarray) -> np.ndarray:
        length = self.length
        across = np.abs(aisles[:, None] - aisles[None, :]) * self.aisle_spacing
        around = np.minimum(ys[:, None] + ys[None, :], 2 * length - ys[:, None] - ys[None, :])
        same = aisles[:, None] == aisles[None, :]
        return np.where(same, np.abs(ys[:, None] - ys[None, :]), across + around)

    def graph(self, aisles: np.ndarray, ys: np.ndarray) -> tuple[coo_matrix, np.ndarray]:
        """The travel graph with the given points as nodes; returns it and each point's node index."""
        nodes: dict[tuple[int, float], int] = {}

        def node(a: int, y: float) -> int:
            return nodes.setdefault((a, float(y)), len(nodes))

        for a in range(self.n_aisles):
            for y in self.cross_aisles:
                node(a, y)
        point_nodes = np.array([node(int(a), y) for a, y in zip(aisles, ys)], dtype=int)
        rows, cols, weights = [], [], []

        def edge(u: int, v: int, w: float, both: bool) -> None:
            rows.append(u), cols.append(v), weights.append(w)
            if both:
                rows.append(v), cols.append(u), weights.append(w)

        by_aisle: dict[int, list[tuple[float, int]]] = {}
        for (a, y), n in nodes.items():
            by_aisle.setdefault(a, []).append((y, n))
        for a, points in by_aisle.items():
            points.sort()
            d = self.direction(a)
            for (y0, n0), (y1, n1) in itertools.pairwise(points):
                if d >= 0:
                    edge(n0, n1, y1 - y0, both=d == 0)
                else:
                    edge(n1, n0, y1 - y0, both=False)
        for y in self.cross_aisles:
            for a in range(self.n_aisles - 1):
                edge(nodes[(a, float(y))], nodes[(a + 1, float(y))], self.aisle_spacing, both=True)
        # zero-length edges between coinciding points would be dropped by the sparse matrix: use a floor
        w = np.maximum(np.array(weights, dtype=float), 1e-12)
        graph = coo_matrix((w, (rows, cols)), shape=(len(nodes), len(nodes))).tocsr()
        return graph, point_nodes

    def _graph_distances(self, aisles: np.ndarray, ys: np.ndarray) -> np.ndarray:
        graph, point_nodes = self.graph(aisles, ys)
        unique, inverse = np.unique(point_nodes, return_inverse=True)
        full = dijkstra(graph, directed=True, indices=unique)
        matrix = full[:, unique][inverse][:, inverse]
        return np.where(matrix < 1e-9, 0.0, matrix)
