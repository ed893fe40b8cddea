"""The population: which valid programs breed and inspire (islands and MAP-Elites by default).

Strategies subclass `Population` and are chosen by `database.population`: `islands` (the default) or
`tournament`, or the name of an entry point in the `evolve.populations` group.
"""

from __future__ import annotations

from collections.abc import Sequence

from evolve.config import Config, DatabaseConfig, FeatureDimension
from evolve.population.base import Member, Population, Selection
from evolve.population.islands import IslandPopulation
from evolve.population.tournament import TournamentPopulation
from evolve.program import ProgramStatus
from evolve.storage.database import ProgramDatabase

__all__ = ["BUILT_IN", "IslandPopulation", "Member", "Population", "Selection", "TournamentPopulation", "attach",
           "make_population", "restore_population"]

BUILT_IN: dict[str, type[Population]] = {"islands": IslandPopulation, "tournament": TournamentPopulation}


def make_population(config: DatabaseConfig | None = None, features: Sequence[FeatureDimension] = (),
                    seed: int = 0) -> Population:
    """The population `config.population` names: a built-in strategy or an installed plugin's."""
    config = config or DatabaseConfig()
    name = config.population
    cls = BUILT_IN.get(name)
    if cls is not None:
        return cls(config, features, seed)
    from evolve import plugins

    population: Population = plugins.build_plugin(plugins.POPULATIONS, name, config, features, seed,
                                                  kind="database.population", built_in=sorted(BUILT_IN),
                                                  base=Population, hint="an evolve.population.Population subclass")
    return population


def restore_population(config: Config, database: ProgramDatabase, *, follow: bool = False) -> Population:
    """The campaign's population rebuilt from the store's small columns and recorded migrations; with
    `follow`, it then takes in every valid program the store commits."""
    population = make_population(config.database, config.problem.features, config.seed)
    return attach(population, database, follow=follow)


def attach(population: Population, database: ProgramDatabase, *, follow: bool = True) -> Population:
    """Rebuild `population` from `database`'s small columns and recorded migrations; with `follow`, it then
    takes in every valid program the database commits. Returns the population."""
    population.restore(database.members([f.name for f in population.features]), database.migrations())
    if follow:
        database.subscribe(lambda p: population.add(Member.of(p)) if p.status is ProgramStatus.VALID else None)
    return population
