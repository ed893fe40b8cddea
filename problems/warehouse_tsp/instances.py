"""Seeded tour generator and the train / validation / test / shifted splits.

Everything is derived from `GeneratorConfig.seed` with NumPy's PCG64, so every machine builds the same
tours. `train` holds 60 representative tours: the k-medoids of a pool of 2,000 over pick count, aisles
visited, storage policy, depot and constraints. `val` (60) and `test` (240) are drawn independently;
`shifted` (60) uses a wider, longer layout and a different demand skew.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from problems.warehouse_tsp.layout import Layout

__all__ = ["CONSTRAINTS", "GeneratorConfig", "Tour", "build_splits", "generate"]

CONSTRAINTS = ("capacity", "precedence", "one_way", "start_end")


@dataclass(frozen=True)
class GeneratorConfig:
    """How tours are made.

    Attributes:
        seed: root seed of every split.
        layout: `single` (front and back cross-aisles) or `multi` (`blocks` blocks per aisle).
        n_aisles, cells_per_block, cell_pitch, aisle_spacing, blocks: the layout's geometry (metres).
        picks: smallest and largest number of picks in a tour.
        storage: storage policies to draw from: `random` and/or `abc` (fast movers near the depot).
        abc_skew: demand curve F(x) = x^s for ABC storage (0.139: 20% of SKUs give 80% of picks).
        depots: aisles whose front end may hold the depot.
        constraints: any of capacity, precedence, one_way, start_end; one_way applies to the layout,
            the others to about half of the tours each (capacity and start_end never together).
        pool_size, train_size, val_size, test_size, shifted_size: split sizes.
    """

    seed: int = 2026
    layout: str = "single"
    n_aisles: int = 12
    cells_per_block: int = 30
    cell_pitch: float = 1.0
    aisle_spacing: float = 4.0
    blocks: int = 3
    picks: tuple[int, int] = (10, 80)
    storage: tuple[str, ...] = ("random", "abc")
    abc_skew: float = 0.139
    depots: tuple[int, ...] = (0, 5, 11)
    constraints: tuple[str, ...] = ()
    pool_size: int = 2000
    train_size: int = 60
    val_size: int = 60
    test_size: int = 240
    shifted_size: int = 60

    def __post_init__(self) -> None:
        unknown = set(self.constraints) - set(CONSTRAINTS)
        if unknown:
            raise ValueError(f"unknown constraints {sorted(unknown)}; choose from {list(CONSTRAINTS)}")
        if self.layout not in ("single", "multi"):
            raise ValueError(f"layout={self.layout!r}: use 'single' or 'multi'")
        if not set(self.storage) <= {"random", "abc"} or not self.storage:
            raise ValueError(f"storage={list(self.storage)}: use 'random' and/or 'abc'")
        if any(not 0 <= d < self.n_aisles for d in self.depots):
            raise ValueError(f"depots={list(self.depots)} must be aisle indices below n_aisles={self.n_aisles}")
        if not 1 <= self.picks[0] <= self.picks[1]:
            raise ValueError(f"picks={list(self.picks)} must be [min, max] with 1 <= min <= max")

    def make_layout(self) -> Layout:
        """The layout these tours live in."""
        blocks = self.blocks if self.layout == "multi" else 1
        one_way = tuple(1 if a % 2 == 0 else -1 for a in range(self.n_aisles)) if "one_way" in self.constraints else ()
        return Layout(self.n_aisles, self.cells_per_block * self.cell_pitch, self.aisle_spacing, blocks, one_way)


@dataclass(frozen=True)
class Tour:
    """One picking tour: where the picks are and what constrains the route (trusted side)."""

    name: str
    layout: Layout
    start: tuple[int, float]
    end: tuple[int, float]
    aisles: tuple[int, ...]
    ys: tuple[float, ...]
    weights: tuple[float, ...]
    classes: tuple[int, ...]
    capacity: float | None = None
    precedence: bool = False
    storage: str = "random"

    @property
    def n(self) -> int:
        """Number of picks."""
        return len(self.aisles)

    @cached_property
    def matrix(self) -> np.ndarray:
        """Distances between [start, pick 0 .. pick n-1, end]."""
        aisles = np.array([self.start[0], *self.aisles, self.end[0]])
        ys = np.array([self.start[1], *self.ys, self.end[1]])
        return self.layout.distances(aisles, ys)

    @property
    def is_exact_solvable(self) -> bool:
        """The Ratliff-Rosenthal DP gives this tour's optimum."""
        return self.layout.is_simple and self.capacity is None and not self.precedence and self.start == self.end

    def constraint_names(self) -> list[str]:
        """The constraints in force for this tour."""
        names = []
        if self.capacity is not None:
            names.append("capacity")
        if self.precedence:
            names.append("precedence")
        if any(self.layout.one_way):
            names.append("one_way")
        if self.start != self.end:
            names.append("start_end")
        return names

    def features(self) -> list[float]:
        """What makes tours alike, for choosing representative ones."""
        return [self.n, len(set(self.aisles)), float(self.storage == "abc"), self.start[0],
                float(self.capacity is not None), float(self.precedence), float(self.start != self.end)]


def _locations(layout: Layout, cfg: GeneratorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every storage cell as (aisle, y), with y at the cell's centre."""
    ys = [b * layout.block_length + (c + 0.5) * cfg.cell_pitch
          for b in range(layout.blocks) for c in range(cfg.cells_per_block)]
    aisles = np.repeat(np.arange(layout.n_aisles), len(ys))
    return aisles, np.tile(np.array(ys), layout.n_aisles)


def generate(cfg: GeneratorConfig, count: int, seed: int, prefix: str) -> list[Tour]:
    """`count` tours drawn with `seed`."""
    rng = np.random.default_rng(seed)
    layout = cfg.make_layout()
    loc_aisles, loc_ys = _locations(layout, cfg)
    tours = []
    for t in range(count):
        depot = int(rng.choice(cfg.depots))
        storage = str(rng.choice(cfg.storage))
        n = int(rng.integers(cfg.picks[0], cfg.picks[1] + 1))
        if storage == "abc":  # cells ranked by distance from the depot; demand F(x) = x^s
            rank = np.argsort(np.abs(loc_aisles - depot) * layout.aisle_spacing + loc_ys, kind="stable")
            picked = rank[np.minimum((rng.random(n) ** (1 / cfg.abc_skew) * len(rank)).astype(int), len(rank) - 1)]
        else:
            picked = rng.integers(0, len(loc_aisles), n)
        weights = np.round(rng.lognormal(2.0, 0.6, n), 2)
        classes = np.zeros(n, dtype=int)
        capacity, precedence, end = None, False, (depot, 0.0)
        wants = {c: rng.random() < 0.5 for c in ("capacity", "precedence", "start_end")}
        if "capacity" in cfg.constraints and wants["capacity"]:
            capacity = float(max(weights.max(), round(weights.sum() * rng.uniform(0.35, 0.6), 2)))
        if "precedence" in cfg.constraints and wants["precedence"]:
            precedence = True
            classes = rng.choice(3, size=n, p=[0.2, 0.7, 0.1])  # heavy first ... fragile last
        if "start_end" in cfg.constraints and wants["start_end"] and capacity is None:
            others = [d for d in range(layout.n_aisles) if d != depot]
            end = (int(rng.choice(others)), 0.0)
        tours.append(Tour(
            name=f"{prefix}-{t:04d}", layout=layout, start=(depot, 0.0), end=end,
            aisles=tuple(int(a) for a in loc_aisles[picked]), ys=tuple(float(y) for y in loc_ys[picked]),
            weights=tuple(float(w) for w in weights), classes=tuple(int(c) for c in classes),
            capacity=capacity, precedence=precedence, storage=storage,
        ))
    return tours


def pairwise_distances(points: np.ndarray, rows: int = 128) -> np.ndarray:
    """Euclidean distances between every two rows of `points`, a block of rows at a time: the same values,
    bit for bit, as the one-shot broadcast, without its n x n x features intermediate (256 MB for the pool
    of 2,000, in every process that builds the evaluator)."""
    dist = np.empty((len(points), len(points)))
    for start in range(0, len(points), rows):
        block = points[start:start + rows]
        dist[start:start + rows] = np.sqrt(((block[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    return dist


def k_medoids(points: np.ndarray, k: int, seed: int, iterations: int = 30) -> list[int]:
    """Indices of k medoids of `points` (k-means++ seeding, then alternating assignment and update)."""
    rng = np.random.default_rng(seed)
    scaled = (points - points.mean(0)) / np.where(points.std(0) > 0, points.std(0), 1.0)
    dist = pairwise_distances(scaled)
    medoids = [int(rng.integers(len(points)))]
    while len(medoids) < k:
        nearest = dist[:, medoids].min(1) ** 2
        medoids.append(int(rng.choice(len(points), p=nearest / nearest.sum())))
    for _ in range(iterations):
        label = dist[:, medoids].argmin(1)
        updated = []
        for c in range(k):
            members = np.flatnonzero(label == c)
            updated.append(int(members[dist[np.ix_(members, members)].sum(1).argmin()]) if len(members) else medoids[c])
        if updated == medoids:
            break
        medoids = updated
    return sorted(set(medoids))


@functools.lru_cache(maxsize=8)
def build_splits(cfg: GeneratorConfig) -> dict[str, list[Tour]]:
    """The four splits, identical on every machine for the same config."""
    pool = generate(cfg, cfg.pool_size, cfg.seed, "pool")
    medoids = k_medoids(np.array([t.features() for t in pool]), cfg.train_size, cfg.seed)
    train = [replace(pool[i], name=f"train-{n:02d}") for n, i in enumerate(medoids)]
    shifted_cfg = replace(cfg, n_aisles=cfg.n_aisles + 6, cells_per_block=int(cfg.cells_per_block * 1.5),
                          abc_skew=0.3, storage=("abc",))
    return {
        "train": train,
        "val": generate(cfg, cfg.val_size, cfg.seed + 1, "val"),
        "test": generate(cfg, cfg.test_size, cfg.seed + 2, "test"),
        "shifted": generate(shifted_cfg, cfg.shifted_size, cfg.seed + 3, "shifted"),
    }
