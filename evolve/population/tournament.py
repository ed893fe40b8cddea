"""Tournament selection over one pool of every valid program: a simple, strong baseline strategy."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.population.base import Member, Population, Selection

__all__ = ["TournamentPopulation"]


class TournamentPopulation(Population):
    """One pool, no islands: a parent is the best of `database.tournament_size` programs drawn at random
    (larger tournaments press harder towards the best); inspirations are the pool's best programs
    (`num_top_inspirations`) and programs drawn at random (`num_diverse_inspirations`)."""

    def __init__(self, config: DatabaseConfig | None = None, features: Sequence[FeatureDimension] = (),
                 seed: int = 0) -> None:
        super().__init__(config, features, seed)
        self._members: dict[int, Member] = {}
        self._ids: list[int] = []
        self._top: list[tuple[float, int]] = []  # (-score, id), best first, at most top_k

    def add(self, member: Member) -> None:
        if member.id in self._members:
            return
        self._members[member.id] = member
        self._ids.append(member.id)
        bisect.insort(self._top, (-member.score, member.id))
        del self._top[self.config.top_k:]

    def select(self, island: int) -> Selection:
        if not self._ids:
            raise LookupError("the population holds no valid program yet; add the initial program first")
        size = max(1, min(self.config.tournament_size, len(self._ids)))
        entrants = self.rng.sample(self._ids, size)
        parent = max(entrants, key=lambda pid: (self._members[pid].score, -pid))
        parent_hash = self._members[parent].code_hash
        labels: dict[int, str] = {}
        for _, pid in self._top:
            if len(labels) >= self.config.num_top_inspirations:
                break
            if pid != parent and self._members[pid].code_hash != parent_hash:
                labels[pid] = "best"
        others = [pid for pid in self._ids if pid != parent and pid not in labels]
        for pid in self.rng.sample(others, min(self.config.num_diverse_inspirations, len(others))):
            labels[pid] = "random"
        return Selection(parent, tuple(labels), labels)

    def partner(self, island: int) -> int | None:
        return self._top[0][1] if self._top else None

    def island_best(self) -> list[float | None]:
        return [-self._top[0][0] if self._top else None]

    def leaders(self) -> list[int]:
        return [self._top[0][1]] if self._top else []
