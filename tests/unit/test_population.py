"""Populations: the contract every strategy keeps, the two built-in ones, plugins, and exact cadences."""

from __future__ import annotations

import pytest

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.engine.cadence import Cadence
from evolve.errors import ConfigError
from evolve.population import (
    IslandPopulation,
    Member,
    Population,
    Selection,
    TournamentPopulation,
    attach,
    make_population,
)
from evolve.population.grid import cell_of, quantile_edges
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage.database import ProgramDatabase
from evolve.testing import PopulationContract

FEATURES = [FeatureDimension(name="spread", min=0.0, max=1.0, bins=4)]
ADAPTIVE = [FeatureDimension(name="spread", bins=4, adaptive=True), FeatureDimension(name="code_length", bins=3,
                                                                                    adaptive=True)]
STRATEGIES = ["islands", "tournament"]


def _member(pid, score, iteration=None, island=0, spread=0.5):
    return Member(pid, pid if iteration is None else iteration, score, island, None, f"h{pid}", 10, {"spread": spread})


def _filled(name, seed=3, n=40):
    population = make_population(DatabaseConfig(islands=3, population=name), FEATURES, seed)
    for pid in range(n):
        population.add(_member(pid, float((pid * 7) % 13), island=pid % 3, spread=(pid % 8) / 8))
    return population


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_keeps_the_contract(name):
    population = _filled(name)
    assert isinstance(population, Population)
    picks = [population.select(n % population.islands) for n in range(200)]
    for chosen in picks:
        assert isinstance(chosen, Selection) and 0 <= chosen.parent < 40
        assert chosen.parent not in chosen.inspirations
        assert len(set(chosen.inspirations)) == len(chosen.inspirations)
        assert set(chosen.labels) == set(chosen.inspirations)
    assert len({c.parent for c in picks}) > 3  # it explores
    again = _filled(name)  # the same seed and calls: the same choices
    assert [again.select(n % again.islands) for n in range(200)] == picks
    other = _filled(name, seed=4)
    assert [other.select(n % other.islands) for n in range(200)] != picks
    assert max(b for b in population.island_best() if b is not None) == 12.0


@pytest.mark.parametrize("name", STRATEGIES)
def test_an_empty_population_says_why(name):
    with pytest.raises(LookupError, match="no valid program"):
        make_population(DatabaseConfig(population=name)).select(0)


def test_tournament_prefers_better_programs_as_the_tournament_grows():
    def mean_parent_score(size):
        population = make_population(DatabaseConfig(population="tournament", tournament_size=size), seed=1)
        for pid in range(100):
            population.add(_member(pid, float(pid)))
        return sum(population.select(0).parent for _ in range(500)) / 500

    assert mean_parent_score(1) < mean_parent_score(2) < mean_parent_score(8)
    assert mean_parent_score(1) == pytest.approx(49.5, abs=8)  # size 1: uniform


@pytest.mark.parametrize("features", [FEATURES, ADAPTIVE], ids=["fixed", "adaptive"])
def test_a_restored_population_chooses_as_the_live_one(tmp_path, features):
    config = DatabaseConfig(islands=3, migration_count=1)
    live_db = ProgramDatabase(f"sqlite:///{tmp_path / 'p.db'}", "c", "p", config, features)
    live = attach(IslandPopulation(config, features, seed=9), live_db)
    for i in range(70):  # past 64 valid programs: the adaptive bins moved 7 times, between migrations
        code = f"x = {i}\n" + "#" * (i * 37 % 11)
        live_db.add(iteration=i, status=ProgramStatus.VALID if i % 5 else ProgramStatus.INVALID, code=code,
                    code_hash=normalized_hash(code), score=float(i % 7), features={"spread": (i * 0.37) % 1},
                    island=i % 3)
        if i % 10 == 9:
            live_db.record_migrations(live.migrate(), i)
    restored = attach(IslandPopulation(config, features, seed=9), live_db, follow=False)
    assert restored.grids() == live.grids() and restored.island_best() == live.island_best()
    assert restored.axes.edges == live.axes.edges and restored.bounds() == live.bounds()
    assert all(len(grid) >= 4 for grid in live.grids())
    assert [i.top for i in restored.island_list] == [i.top for i in live.island_list]
    assert [i.migrants for i in restored.island_list] == [i.migrants for i in live.island_list]
    restored.rng.seed(1)
    live.rng.seed(1)
    assert [restored.select(n % 3) for n in range(50)] == [live.select(n % 3) for n in range(50)]
    live_db.close()


def test_quantile_edges_cut_the_distinct_values_into_groups_of_equal_size():
    assert quantile_edges([5.0, 1.0, 3.0, 2.0, 6.0, 4.0] * 3, 3) == (3.0, 5.0)  # repeats count once
    assert quantile_edges([float(v) for v in range(12)], 4) == (3.0, 6.0, 9.0)
    assert quantile_edges([1.0, 2.0], 4) == (1.0, 2.0, 2.0)  # fewer values than bins: some bins stay empty
    assert quantile_edges([], 4) == ()
    dims = [FeatureDimension(name="f", bins=4, adaptive=True)]
    cells = [cell_of(dims, {"f": v}, 0, [(3.0, 6.0, 9.0)])[0] for v in (-1.0, 2.9, 3.0, 8.0, 9.0, 99.0)]
    assert cells == [0, 0, 1, 2, 3, 3]  # an edge's value falls in the bin above it
    assert cell_of(dims, {}, 0, [(3.0, 6.0, 9.0)]) == (0,)


def test_adaptive_bins_follow_the_values_programs_have():
    dims = [FeatureDimension(name="ms", min=0.0, max=25.0, bins=5, adaptive=adaptive) for adaptive in (False, True)]
    fixed, adaptive = (IslandPopulation(DatabaseConfig(islands=1), [dim], seed=0) for dim in dims)
    edges = []
    for pid in range(100):  # every program between 2 and 3, where fixed bins over 0-25 see one cell
        member = _member(pid, float(pid % 10), iteration=pid, spread=0.0)
        member = member._replace(features={"ms": 2 + (pid * 0.61) % 1})
        fixed.add(member)
        adaptive.add(member)
        edges.append(adaptive.axes.edges[0])
    assert len(fixed.grids()[0]) == 1 and len(adaptive.grids()[0]) == 5
    moves = [n + 1 for n in range(1, 100) if edges[n] != edges[n - 1]]
    assert set(moves) <= {2, 4, 8, 16, 32, 64} and 64 in moves  # the bins move at doubling points only
    values = {pid: 2 + (pid * 0.61) % 1 for pid in range(100)}
    for cell, elite in adaptive.grids()[0].items():  # every elite is the best (oldest among equals) of its cell
        inside = [pid for pid in values if cell_of(dims[1:], {"ms": values[pid]}, 0, adaptive.axes.edges) == cell]
        assert elite == min(inside, key=lambda pid: (-float(pid % 10), pid))
    low, *inner, high = adaptive.bounds()[0]
    assert 2 <= low < inner[0] and tuple(inner) == adaptive.axes.edges[0] and high < 3
    assert fixed.bounds()[0] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]


def test_a_cell_keeps_its_best_program_whatever_the_order_of_arrival():
    dims = [FeatureDimension(name="spread", bins=2)]
    members = [_member(pid, score, iteration=pid + 1, spread=0.1) for pid, score in ((1, 2.0), (2, 5.0), (3, 5.0))]
    elites = set()
    for order in (members, members[::-1], members[1:] + members[:1]):
        population = IslandPopulation(DatabaseConfig(islands=1), dims, seed=0)
        for member in order:
            population.add(member)
        elites.add(population.grids()[0][(0,)])
    assert elites == {2}  # the better one; among equals, the older


def test_inspirations_are_labelled_by_why_they_were_chosen():
    population = IslandPopulation(DatabaseConfig(islands=2, num_top_inspirations=2, num_diverse_inspirations=2,
                                                 migration_count=1), FEATURES, seed=0)
    population.add(_member(0, 1.0, iteration=0))
    for pid in range(1, 12):
        population.add(_member(pid, float(pid), island=pid % 2, spread=(pid % 4) / 4))
    population.migrate()
    labels = set()
    for _ in range(50):
        labels |= set(population.select(0).labels.values())
    assert labels <= {"best", "diverse", "migrant"} and {"best", "migrant"} <= labels


def test_a_strategy_from_an_entry_point(tmp_path, monkeypatch):
    module = tmp_path / "greedy_population.py"
    module.write_text(
        "from evolve.population import Population, Selection\n"
        "class Greedy(Population):\n"
        "    def __init__(self, config=None, features=(), seed=0):\n"
        "        super().__init__(config, features, seed)\n"
        "        self.ranked = []\n"
        "    def add(self, member):\n"
        "        self.ranked = sorted(self.ranked + [member], key=lambda m: (-m.score, m.id))\n"
        "    def select(self, island):\n"
        "        if not self.ranked:\n"
        "            raise LookupError('no valid program yet')\n"
        "        return Selection(self.ranked[0].id, tuple(m.id for m in self.ranked[1:3]))\n")
    dist = tmp_path / "greedy_population-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: greedy-population\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evolve.populations]\ngreedy = greedy_population:Greedy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    population = make_population(DatabaseConfig(population="greedy"))
    for pid in range(5):
        population.add(_member(pid, float(pid)))
    assert population.select(0) == Selection(4, (3, 2))
    monkeypatch.setenv("EVOLVE_DISABLE_PLUGINS", "1")
    with pytest.raises(ConfigError,
                       match=r"database\.population='greedy' is not known; use one of islands, tournament"):
        make_population(DatabaseConfig(population="greedy"))


def test_an_unknown_strategy_is_one_line():
    with pytest.raises(ConfigError) as caught:
        make_population(DatabaseConfig(population="annealing"))
    assert "\n" not in str(caught.value) and "islands, tournament" in str(caught.value)


@pytest.mark.parametrize("counts, fired", [
    ([1, 2, 3, 4, 5], [4]),  # every step
    ([3, 3, 3, 4, 4, 4], [4]),  # a count seen again fires nothing
    ([2, 9], [4, 8]),  # a skip over two multiples: each once
    ([0, 0], []),
])
def test_a_cadence_fires_once_per_multiple(counts, fired):
    cadence = Cadence(4)
    seen = []
    for count in counts:
        seen += cadence.due(count)
    assert seen == fired


def test_a_cadence_resumed_past_multiples_fires_only_ahead():
    cadence = Cadence(40, 95)
    assert cadence.due(100) == [] and cadence.due(121) == [120]
    assert Cadence(0, 5).due(10 ** 6) == []


class TestIslands(PopulationContract):
    def make_population(self, config, features, seed):
        return IslandPopulation(config, features, seed)


class TestTournament(PopulationContract):
    def make_population(self, config, features, seed):
        return TournamentPopulation(config, features, seed)


def _docstring_example() -> type[Population]:
    """The complete strategy in `Population`'s docstring, run as written."""
    text = Population.__doc__.split("Example")[1].split("::", 1)[1]
    source = "\n".join(line[8:] for line in text.splitlines())
    namespace: dict = {"Population": Population, "Selection": Selection, "Member": Member}
    exec(compile(source, "<Population docstring>", "exec"), namespace)
    return namespace["Greedy"]


class TestDocstringExample(PopulationContract):
    def make_population(self, config, features, seed):
        return _docstring_example()(config, features, seed)


def test_the_contract_fails_a_strategy_that_breaks_it():
    class ShowsItself(IslandPopulation):  # its parent is also its own inspiration
        def select(self, island):
            chosen = super().select(island)
            return Selection(chosen.parent, (chosen.parent, *chosen.inspirations))

    class Check(PopulationContract):
        def make_population(self, config, features, seed):
            return ShowsItself(config, features, seed)

    with pytest.raises(AssertionError, match="its own inspiration"):
        Check().test_selections_name_added_programs_and_never_the_parent_twice()


def test_a_feature_the_initial_program_lacks_is_named_with_the_closest_it_has():
    from evolve.population.grid import unseen_features

    dims = [FeatureDimension(name="code_length"), FeatureDimension(name="items_share"),
            FeatureDimension(name="item_share")]
    lines = unseen_features(dims, {"items_share": 0.4}, {"ratio": 0.9})
    assert lines == [("features[2] 'item_share' is not among the initial program's features or metrics (items_share, "
                      "ratio); did you mean items_share? (the grid reads Score.features; without it every program "
                      "sits in that axis's first bin)")]
