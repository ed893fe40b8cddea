"""Seeded bin packing instances in the style of the OR-Library and of FunSearch's Weibull sets.

A group is named by family and item count: `or500` is 500 items drawn uniformly from the integers
20..100 with bins of 150 (OR-Library binpack3's distribution), `weibull5000` is 5,000 items drawn from
Weibull(shape 3, scale 45), rounded and clipped to 1..100, with bins of 100 (FunSearch's Weibull 5k
distribution). Every instance comes from NumPy's PCG64 seeded by (seed, split, family, size, index), so
every machine builds the same ones, and an instance does not change when other groups are added.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["FAMILIES", "SPLITS", "GeneratorConfig", "Instance", "build_splits", "generate", "parse_group"]

FAMILIES = {"or": 150, "weibull": 100}  # family -> bin capacity
SPLITS = ("train", "val", "test")
_GROUP = re.compile(r"^(or|weibull)(\d+)$")


@dataclass(frozen=True)
class Instance:
    """One online bin packing instance: the items in arrival order and the bin capacity."""

    name: str
    group: str
    capacity: int
    items: tuple[int, ...]

    @property
    def l1_bound(self) -> int:
        """ceil(sum of sizes / capacity): no packing, online or offline, uses fewer bins."""
        return -(-sum(self.items) // self.capacity)


def parse_group(group: str) -> tuple[str, int]:
    """`or120` -> ("or", 120); raise ValueError for anything else."""
    match = _GROUP.match(group)
    if not match or int(match.group(2)) < 1:
        raise ValueError(f"group {group!r} is not <family><items> with family 'or' or 'weibull', e.g. or120")
    return match.group(1), int(match.group(2))


def _items(family: str, size: int, rng: np.random.Generator) -> np.ndarray:
    if family == "or":  # OR-Library binpack1-4: uniform integers in [20, 100]
        return rng.integers(20, 101, size)
    return np.clip(np.round(rng.weibull(3.0, size) * 45.0), 1, 100).astype(int)  # FunSearch's Weibull


def generate(seed: int, split: str, group: str, count: int) -> list[Instance]:
    """`count` instances of one group of one split."""
    family, size = parse_group(group)
    out = []
    for k in range(count):
        rng = np.random.default_rng([seed, SPLITS.index(split), list(FAMILIES).index(family), size, k])
        items = tuple(int(x) for x in _items(family, size, rng))
        out.append(Instance(f"{split}-{group}-{k:02d}", group, FAMILIES[family], items))
    return out


@dataclass(frozen=True)
class GeneratorConfig:
    """How many instances of which groups each split holds (group -> count), and the root seed."""

    seed: int = 2026
    train: tuple[tuple[str, int], ...] = (("or120", 4), ("or250", 4), ("or500", 4), ("weibull1000", 4))
    val: tuple[tuple[str, int], ...] = (("or120", 4), ("or250", 4), ("or500", 4), ("weibull1000", 4))
    test: tuple[tuple[str, int], ...] = (("or120", 20), ("or250", 20), ("or500", 20), ("or1000", 20),
                                         ("weibull1000", 10), ("weibull5000", 5))

    def __post_init__(self) -> None:
        for split in SPLITS:
            groups = getattr(self, split)
            if not groups:
                raise ValueError(f"the {split} split holds no groups")
            for group, count in groups:
                parse_group(group)
                if int(count) < 1:
                    raise ValueError(f"{split}.{group}={count}: each group needs at least one instance")


@functools.lru_cache(maxsize=8)
def build_splits(cfg: GeneratorConfig) -> dict[str, list[Instance]]:
    """The three splits, identical on every machine for the same config."""
    return {split: [inst for group, count in getattr(cfg, split) for inst in generate(cfg.seed, split, group, count)]
            for split in SPLITS}
