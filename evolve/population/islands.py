"""Islands with ring migration and a MAP-Elites grid per island: the default population."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.population.base import Member, Population, Selection
from evolve.population.grid import Axes, cell_of

__all__ = ["Island", "IslandPopulation", "cell_of"]


@dataclass
class Island:
    """One island: its members, a bounded ranking and a MAP-Elites grid."""

    members: list[int] = field(default_factory=list)
    member_set: set[int] = field(default_factory=set)
    top: list[tuple[float, int]] = field(default_factory=list)  # (-score, id), best first
    grid: dict[tuple[int, ...], int] = field(default_factory=dict)
    migrants: set[int] = field(default_factory=set)


class IslandPopulation(Population):
    """`database.islands` islands, each with a ranking of its best and a MAP-Elites grid.

    The initial program seeds every island; a child joins its parent's iteration's island. A parent is
    the island's best (rank-weighted, `exploitation_ratio`), a cell's elite (`exploration_ratio`), or any
    valid program; inspirations are the island's best and elites of other cells. Migration sends each
    island's `migration_count` best to the next island in a ring. A cell's elite is its best program, the
    oldest among equals, whatever the order programs arrived in; when adaptive bins move (`grid.Axes`),
    every cell and grid is recomputed.
    """

    def __init__(self, config: DatabaseConfig | None = None, features: Sequence[FeatureDimension] = (),
                 seed: int = 0) -> None:
        super().__init__(config, features, seed)
        self.island_list = [Island() for _ in range(max(1, self.config.islands))]
        self._members: dict[int, Member] = {}
        self._cells: dict[int, tuple[int, ...]] = {}
        self._all: list[int] = []
        self._seeded = False
        self.axes = Axes(self.features)

    @property
    def islands(self) -> int:
        return len(self.island_list)

    def add(self, member: Member) -> None:
        self._members[member.id] = member
        self._all.append(member.id)
        if self.axes.observe(member.features, member.code_length):
            self._rebin()
        self._cells[member.id] = self.axes.cell(member.features, member.code_length)
        if member.iteration == 0 and not self._seeded:  # the initial program seeds every island
            self._seeded = True
            for n in range(self.islands):
                self._put(member, n)
        else:
            self._put(member, member.island % self.islands)

    def _put(self, member: Member, island_no: int) -> None:
        island = self.island_list[island_no]
        if member.id in island.member_set:
            return
        island.members.append(member.id)
        island.member_set.add(member.id)
        bisect.insort(island.top, (-member.score, member.id))
        del island.top[self.config.top_k:]
        self._offer(island, member)

    def _offer(self, island: Island, member: Member) -> None:
        cell = self._cells[member.id]
        occupant = island.grid.get(cell)
        if occupant is None or (member.score, -member.id) > (self._members[occupant].score, -occupant):
            island.grid[cell] = member.id

    def _rebin(self) -> None:
        """Recompute every cell and grid on the bins that just moved."""
        for pid, member in self._members.items():
            self._cells[pid] = self.axes.cell(member.features, member.code_length)
        for island in self.island_list:
            island.grid = {}
            for pid in island.members:
                self._offer(island, self._members[pid])

    def place(self, program_id: int, island: int) -> None:
        member = self._members.get(program_id)
        if member is not None and 0 <= island < self.islands:
            self._put(member, island)
            self.island_list[island].migrants.add(program_id)

    def migrate(self) -> list[tuple[int, int]]:
        moves = []
        for n, island in enumerate(self.island_list):
            target = (n + 1) % self.islands
            for _, pid in island.top[: self.config.migration_count]:
                if target != n and pid not in self.island_list[target].member_set:
                    moves.append((pid, target))
        for pid, target in moves:
            self.place(pid, target)
        return moves

    def select(self, island: int) -> Selection:
        isl = self.island_list[island % self.islands]
        if not isl.members:
            raise LookupError("the population holds no valid program yet; add the initial program first")
        rng, cfg = self.rng, self.config
        elites = [isl.grid[cell] for cell in sorted(isl.grid)]  # in cell order: the same, however it was built
        roll = rng.random()
        if roll < cfg.exploitation_ratio:  # the island's best, rank-weighted towards the top
            ranked = [pid for _, pid in isl.top]
            parent = rng.choices(ranked, weights=[1.0 / (rank + 1) for rank in range(len(ranked))])[0]
        elif roll < cfg.exploitation_ratio + cfg.exploration_ratio:  # any cell's elite: diversity
            parent = rng.choice(elites)
        else:  # anything valid, from any island
            parent = rng.choice(self._all)
        parent_hash = self._members[parent].code_hash
        chosen = {parent}
        labels: dict[int, str] = {}
        for _, pid in isl.top:
            if len(labels) >= cfg.num_top_inspirations:
                break
            if pid not in chosen and self._members[pid].code_hash != parent_hash:
                chosen.add(pid)
                labels[pid] = "migrant" if pid in isl.migrants else "best"
        others = [pid for pid in elites if pid not in chosen]
        for pid in rng.sample(others, min(cfg.num_diverse_inspirations, len(others))):
            labels[pid] = "migrant" if pid in isl.migrants else "diverse"
        return Selection(parent, tuple(labels), labels, self._cells.get(parent))

    def partner(self, island: int) -> int | None:
        other = self.island_list[(island + 1) % self.islands]
        return other.top[0][1] if other.top else None

    def island_best(self) -> list[float | None]:
        return [-isl.top[0][0] if isl.top else None for isl in self.island_list]

    def grids(self) -> list[dict[tuple[int, ...], int]]:
        return [dict(isl.grid) for isl in self.island_list]

    def leaders(self) -> list[int]:
        return [isl.top[0][1] for isl in self.island_list if isl.top]

    def bounds(self) -> list[list[float]]:
        return self.axes.bounds()

    def cell(self, program_id: int) -> tuple[int, ...] | None:
        """The MAP-Elites cell of an added program."""
        return self._cells.get(program_id)
