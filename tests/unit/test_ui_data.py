"""The web view's data (`evolve.ui.data`) from real SQLite and PostgreSQL databases: natural values, nothing clamped."""

from __future__ import annotations

import dataclasses

import pytest

from evolve.config import Config, DatabaseConfig, FeatureDimension
from evolve.problems import get_problem
from evolve.program import ProgramStatus
from evolve.storage.database import ProgramDatabase
from evolve.ui.data import campaign_data, program_detail

CODE = "def solve(n):\n    return {}\n"


def _config(direction: str) -> Config:
    problem = dataclasses.replace(get_problem("circle_packing"), direction=direction,
                                  features=[FeatureDimension(name="spread", min=0.0, max=1.0, bins=4)])
    return Config(problem=problem, name="ui-test", database=DatabaseConfig(islands=2))


def _fill(db: ProgramDatabase, engine_scores: list[float | None]) -> list:
    """The initial program, then one child per score on alternating islands (None: an invalid child)."""
    out = [db.add(iteration=0, status=ProgramStatus.VALID, code=CODE.format(0), code_hash="h0",
                  score=engine_scores[0], features={"spread": 0.1}, feedback="initial")]
    for i, score in enumerate(engine_scores[1:], start=1):
        status = ProgramStatus.VALID if score is not None else ProgramStatus.INVALID
        out.append(db.add(iteration=i, status=status, code=CODE.format(i), code_hash=f"h{i}", score=score,
                          features={"spread": (i % 4) / 4 + 0.1}, parent=out[0], island=i % 2,
                          error="" if score is not None else f"solve({i}) returned {i} items", feedback=f"child {i}"))
    return out


@pytest.fixture
def db(database_url):  # SQLite and PostgreSQL
    with ProgramDatabase(database_url, "ui-test", features=_config("maximize").problem.features,
                         config=DatabaseConfig(islands=2)) as database:
        yield database


def test_a_minimised_campaign_is_shown_in_natural_values(db):
    _fill(db, [-5.0, -3.0, None, -4.0, -2.5])  # the engine maximises the negated lengths 5, 3, 4, 2.5
    data = campaign_data(db, _config("minimize"))
    assert data["scores"]["score"] == [5.0, 3.0, 4.0, 2.5]
    assert data["steps"]["all"]["score"] == [5.0, 3.0, 2.5, 2.5]  # best so far falls, then runs on
    assert data["best"]["score"] == 2.5 and data["initial"]["score"] == 5.0
    assert data["view"]["side"] == "above"
    lineage = {n["id"]: n for n in data["lineage"]["nodes"]}
    assert lineage[data["best"]["id"]]["score"] == 2.5 and lineage[data["best"]["id"]]["best"]
    cells = [v for m in data["maps"] for row in m["z"] for v in row if v is not None]
    assert cells and min(cells) == 2.5 and all(v > 0 for v in cells)
    assert program_detail(db, data["best"]["id"], "minimize")["score"] == 2.5


def test_points_outside_the_view_are_counted_never_moved(db):
    scores = [1.0, 0.0, -50.0, 1.1, 1.2, 1.3, -80.0, 1.4, 1.5]
    _fill(db, scores)
    data = campaign_data(db, _config("maximize"))
    view = data["view"]
    assert data["scores"]["score"] == scores  # every valid program, at its own value
    below = [s for s in scores if s < view["lo"]]
    assert view["off"] == len(below) == 2 and view["worst"] == -80.0 and view["side"] == "below"
    assert view["hi"] >= 1.5


def test_failures_steps_per_island_and_the_diff_against_the_parent(db):
    programs = _fill(db, [1.0, 2.0, None, 3.0, None])
    data = campaign_data(db, _config("maximize"))
    assert data["failures"]["statuses"] == {"valid": 3, "invalid": 2}
    assert data["failures"]["reasons"] == [["invalid: solve(N) returned N items", 2]]
    assert data["steps"]["1"]["score"] == [1.0, 2.0, 3.0, 3.0] and data["steps"]["0"]["score"] == [1.0, 1.0]
    assert data["evaluated"] == 5 and data["scores"]["evaluation"] == [1, 2, 4]
    assert data["valid_share"]["share"] == [1.0, 0.5, 2 / 3, 0.5]
    detail = program_detail(db, programs[3].id, "maximize")
    assert detail["parent"] == programs[0].id and "-    return 0\n+    return 3" in detail["diff"]
    assert detail["feedback"] == "child 3" and detail["prompt"] == [] and detail["code"] == programs[3].code


def test_columns_reads_named_columns_and_refuses_unknown_ones(db):
    programs = _fill(db, [1.0, 2.0])
    assert list(db.columns("id", "score")) == [(p.id, p.score) for p in programs]
    with pytest.raises(ValueError, match="programs has no column 'nope'"):
        list(db.columns("id", "nope"))


def test_adaptive_maps_are_drawn_on_the_bins_programs_have(database_url):
    dims = [FeatureDimension(name="spread", bins=4, adaptive=True)]
    config = dataclasses.replace(_config("maximize"), problem=dataclasses.replace(_config("maximize").problem,
                                                                                  features=dims))
    with ProgramDatabase(database_url, "ui-test", features=dims, config=DatabaseConfig(islands=2)) as db:
        _fill(db, [1.0, 2.0])  # two distinct values for four bins: they share edges, and are numbered
        assert campaign_data(db, config)["maps"][0]["x"]["centres"] == [0, 1, 2, 3]
        _fill(db, [float(i) for i in range(14)])  # all four spreads, 0.1 to 0.85: a bin each
        maps = campaign_data(db, config)["maps"]
    centres = maps[0]["x"]["centres"]
    assert centres[0] >= 0.1 and centres[-1] <= 0.85 and centres == sorted(set(centres))
    assert [m["filled"] for m in maps] == [2, 3]  # island 0: spreads 0.1 and 0.6; island 1: 0.35, 0.85 and the initial
