"""`PopulationContract`: the population's contract (`evolve.population.Population`) as a pytest class.

    from evolve.testing import PopulationContract

    class TestGreedy(PopulationContract):
        def make_population(self, config, features, seed):
            return Greedy(config, features, seed)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.population import Member, Population, Selection
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage.database import ProgramDatabase

__all__ = ["PopulationContract"]

FEATURES = (FeatureDimension(name="spread", min=0.0, max=1.0, bins=4),)


class PopulationContract:
    """Subclass it as `Test...` and override `make_population`; pytest runs the checks.

    `programs` is how many valid programs each check adds; `islands` the `database.islands` it is built with.
    """

    programs: ClassVar[int] = 40
    islands: ClassVar[int] = 3

    def make_population(self, config: DatabaseConfig, features: Sequence[FeatureDimension], seed: int) -> Population:
        """A fresh population under test."""
        raise NotImplementedError(f"{type(self).__name__}.make_population: return the population to test")

    def _config(self) -> DatabaseConfig:
        return DatabaseConfig(islands=self.islands, migration_count=1)

    def _members(self) -> list[Member]:
        return [Member(pid, pid, float((pid * 7) % 13), pid % self.islands, 0 if pid else None, f"h{pid}", 10 + pid,
                       {"spread": (pid % 8) / 8}) for pid in range(self.programs)]

    def _filled(self, seed: int) -> Population:
        population = self.make_population(self._config(), FEATURES, seed)
        for member in self._members():
            population.add(member)
        return population

    def _draws(self, population: Population, n: int = 100) -> list[Selection]:
        return [population.select(k % max(1, population.islands)) for k in range(n)]

    def test_is_a_population(self) -> None:
        population = self.make_population(self._config(), FEATURES, 0)
        assert isinstance(population, Population), f"{type(population).__name__} must subclass Population"
        assert population.islands >= 1

    def test_an_empty_population_raises_lookup_error(self) -> None:
        with pytest.raises(LookupError):
            self.make_population(self._config(), FEATURES, 0).select(0)

    def test_selections_name_added_programs_and_never_the_parent_twice(self) -> None:
        population = self._filled(0)
        known = {m.id for m in self._members()}
        for chosen in self._draws(population):
            assert isinstance(chosen, Selection)
            assert chosen.parent in known and set(chosen.inspirations) <= known
            assert chosen.parent not in chosen.inspirations, "the parent is shown as its own inspiration"
            assert len(set(chosen.inspirations)) == len(chosen.inspirations), "an inspiration shown twice"
            assert set(chosen.labels) <= set(chosen.inspirations)
            assert all(isinstance(label, str) and label for label in chosen.labels.values())
            assert chosen.cell is None or all(isinstance(b, int) and b >= 0 for b in chosen.cell), \
                "a cell is a tuple of bin indices"

    def test_the_same_seed_and_calls_give_the_same_choices(self) -> None:
        assert self._draws(self._filled(7)) == self._draws(self._filled(7))

    def test_migration_and_partners_name_added_programs(self) -> None:
        population = self._filled(0)
        known = {m.id for m in self._members()}
        for program_id, island in population.migrate():
            assert program_id in known and 0 <= island < population.islands
        for island in range(population.islands):
            partner = population.partner(island)
            assert partner is None or partner in known
        best = [b for b in population.island_best() if b is not None]
        assert not best or max(best) <= max(m.score for m in self._members())

    def test_a_population_restored_from_the_store_equals_the_live_one(self, tmp_path) -> None:
        config = self._config()
        store = ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", "contract", "p", config, FEATURES)
        try:
            live = self.make_population(config, FEATURES, 5)
            store.subscribe(lambda p: live.add(Member.of(p)) if p.status is ProgramStatus.VALID else None)
            for member in self._members():
                code = f"x = {member.id}\n" + "#" * member.id
                store.add(iteration=member.iteration, status=ProgramStatus.VALID, code=code,
                          code_hash=normalized_hash(code), score=member.score, features=dict(member.features),
                          island=member.island)
                if member.id % 10 == 9:
                    store.record_migrations(live.migrate(), member.iteration)
            restored = self.make_population(config, FEATURES, 5)
            restored.restore(store.members([f.name for f in FEATURES]), store.migrations())
            assert restored.island_best() == live.island_best()
            assert restored.grids() == live.grids() and restored.leaders() == live.leaders()
            restored.rng.seed(1)
            live.rng.seed(1)
            assert self._draws(restored, 50) == self._draws(live, 50), "a resumed campaign would choose differently"
        finally:
            store.close()
