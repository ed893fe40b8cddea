"""Correctness of the warehouse references: exact DP vs brute force, distances vs independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import lil_matrix
from scipy.sparse.csgraph import floyd_warshall

from problems.warehouse_tsp.exact import held_karp, ratliff_rosenthal, route_length
from problems.warehouse_tsp.layout import Layout


def test_ratliff_rosenthal_equals_held_karp_on_300_random_instances():
    rng = np.random.default_rng(12345)
    seen_sizes = set()
    for _ in range(300):
        n_aisles, m = int(rng.integers(1, 8)), int(rng.integers(0, 12))
        layout = Layout(n_aisles=n_aisles, block_length=float(rng.integers(4, 31)),
                        aisle_spacing=float(rng.uniform(1.0, 6.0)))
        depot = int(rng.integers(0, n_aisles))
        aisles = rng.integers(0, n_aisles, m)
        ys = rng.uniform(0, layout.length, m)
        if rng.random() < 0.3:  # shared slots and picks at the very ends of aisles
            ys = np.round(ys)
        matrix = layout.distances(np.concatenate([[depot], aisles]), np.concatenate([[0.0], ys]))
        cost, order = ratliff_rosenthal(layout, depot, aisles, ys)
        optimum, _ = held_karp(matrix, 0)
        assert cost == pytest.approx(optimum, abs=1e-9)
        assert sorted(order) == list(range(m))
        assert route_length(matrix, [i + 1 for i in order], 0, 0) == pytest.approx(cost, abs=1e-9)
        seen_sizes.add((n_aisles, m))
    assert {a for a, _ in seen_sizes} == set(range(1, 8)) and {m for _, m in seen_sizes} == set(range(12))


def test_held_karp_paths_with_a_different_end():
    rng = np.random.default_rng(3)
    for _ in range(20):
        pts = rng.uniform(0, 10, (7, 2))
        matrix = np.abs(pts[:, None, :] - pts[None, :, :]).sum(-1)
        cost, order = held_karp(matrix, 0, 6)
        import itertools
        brute = min(route_length(matrix, list(p), 0, 6) for p in itertools.permutations(range(1, 6)))
        assert cost == pytest.approx(brute) and route_length(matrix, order, 0, 6) == pytest.approx(cost)


def _lattice_distances(layout: Layout, aisles, ys) -> np.ndarray:
    """An independent oracle: a 1 m lattice along every aisle, Floyd–Warshall; points at integer y."""
    steps = int(layout.length)
    index = lambda a, k: a * (steps + 1) + k  # noqa: E731
    graph = lil_matrix(((steps + 1) * layout.n_aisles,) * 2)
    for a in range(layout.n_aisles):
        d = layout.direction(a)
        for k in range(steps):
            if d >= 0:
                graph[index(a, k), index(a, k + 1)] = 1.0
            if d <= 0:
                graph[index(a, k + 1), index(a, k)] = 1.0
    for y in layout.cross_aisles:
        for a in range(layout.n_aisles - 1):
            graph[index(a, int(y)), index(a + 1, int(y))] = layout.aisle_spacing
            graph[index(a + 1, int(y)), index(a, int(y))] = layout.aisle_spacing
    full = floyd_warshall(graph.tocsr(), directed=True)
    nodes = [index(int(a), int(y)) for a, y in zip(aisles, ys)]
    return full[np.ix_(nodes, nodes)]


@pytest.mark.parametrize("layout", [
    Layout(n_aisles=5, block_length=12, aisle_spacing=3),
    Layout(n_aisles=5, block_length=6, aisle_spacing=3, blocks=3),
    Layout(n_aisles=6, block_length=12, aisle_spacing=2, one_way=(1, -1, 1, -1, 1, -1)),
    Layout(n_aisles=4, block_length=5, aisle_spacing=2, blocks=2, one_way=(1, 0, -1, 1)),
], ids=["single", "multi-block", "one-way", "multi-block-one-way"])
def test_distances_agree_with_an_independent_lattice(layout):
    rng = np.random.default_rng(7)
    aisles = rng.integers(0, layout.n_aisles, 25)
    ys = rng.integers(0, int(layout.length) + 1, 25).astype(float)
    assert np.allclose(layout.distances(aisles, ys), _lattice_distances(layout, aisles, ys), atol=1e-9)


def test_single_block_closed_form_matches_the_graph():
    rng = np.random.default_rng(8)
    layout = Layout(n_aisles=9, block_length=23.5, aisle_spacing=3.3)
    aisles, ys = rng.integers(0, 9, 40), rng.uniform(0, 23.5, 40)
    assert layout.is_simple
    assert np.allclose(layout._closed_form(aisles, ys), layout._graph_distances(aisles, ys), atol=1e-9)
