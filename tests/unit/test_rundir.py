"""A run dir's database is opened one way; read-only, it creates and changes nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from evolve.config import Config, DatabaseConfig, FeatureDimension
from evolve.edits import normalized_hash
from evolve.errors import CampaignNotFound, ReadOnlyDatabase, RunDirError
from evolve.program import ProgramStatus
from tests.unit.old_database import write_first_schema
from evolve.replay import Recording
from evolve.rundir import campaign_name, load_config, open_database, upgrade_database, write_config

FEATURES = [FeatureDimension(name="spread", min=0.0, max=1.0, bins=4)]


def _config(circle_problem, **changes) -> Config:
    problem = type(circle_problem)(**{**circle_problem.__dict__, "features": FEATURES})
    return Config(problem=problem, database=DatabaseConfig(islands=2), seed=5, **changes)


def _fill(db, n: int = 6) -> None:
    parent = None
    for i in range(n):
        code = f"x = {i}\n"
        parent = db.add(iteration=i, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                        score=float(i), features={"spread": i / n}, parent=parent, island=i % 2)
        db.record_call(iteration=i, parent_hash=parent.code_hash, messages=[{"role": "user", "content": "?"}],
                       response="!", model="m")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_read_only_creates_nothing_and_refuses_writes(circle_problem, tmp_path):
    config = _config(circle_problem)
    write_config(config, tmp_path)
    with pytest.raises(RunDirError, match="never started"):
        open_database(config, tmp_path, read_only=True)
    assert not (tmp_path / "programs.db").exists()

    with open_database(config, tmp_path) as db:
        _fill(db)
    before = _digest(tmp_path)
    with open_database(config, tmp_path, read_only=True) as db:
        assert db.best().score == 5.0 and db.size == 6 and len(db.calls()) == 6
        assert [p.iteration for p in db.programs()] == list(range(6))
        with pytest.raises(ReadOnlyDatabase):
            db.add(iteration=9, status=ProgramStatus.VALID, code="y", code_hash="y", score=9.0)
        with pytest.raises(ReadOnlyDatabase):
            db.migrate(9)
    assert _digest(tmp_path) == before  # not a byte changed, no file added

    other = Config(problem=config.problem, name="someone-else")
    with pytest.raises(CampaignNotFound, match="someone-else"):
        open_database(other, tmp_path, read_only=True)
    with sqlite3.connect(tmp_path / "programs.db") as raw:
        assert raw.execute("SELECT name FROM campaigns").fetchall() == [(campaign_name(config, tmp_path),)]


def test_every_reader_gets_the_runs_features_and_seed(circle_problem, tmp_path):
    config = _config(circle_problem)
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        _fill(db)
        cells = [dict(island.grid) for island in db.islands]
    loaded = load_config(tmp_path)
    assert loaded.seed == 5 and [f.name for f in loaded.problem.features] == ["spread"]
    draws = []
    for _ in range(2):
        with open_database(loaded, tmp_path, read_only=True) as db:
            assert [dict(island.grid) for island in db.islands] == cells
            draws.append([db.sample(0)[0].id for _ in range(20)])
    assert draws[0] == draws[1]
    recording = Recording.load(tmp_path)  # replay reads the same rows the same way
    assert [s.iteration for s in recording.steps] == list(range(6))


def test_an_older_database_is_refused_read_only_until_upgraded(circle_problem, tmp_path):
    config = _config(circle_problem, name="old")
    write_config(config, tmp_path)
    write_first_schema(tmp_path / "programs.db", "old", "circle_packing")
    with pytest.raises(CampaignNotFound, match="evolve upgrade"):
        open_database(config, tmp_path, read_only=True)
    added = upgrade_database(config, tmp_path)
    assert "programs.cost" in added and "llm_calls" in added
    assert upgrade_database(config, tmp_path) == []
    with open_database(config, tmp_path, read_only=True) as db:
        assert db.best().score == 1.5 and db.best().cost == 0.0


def test_read_only_sees_a_live_campaign_as_it_commits(circle_problem, tmp_path):
    config = _config(circle_problem)
    with open_database(config, tmp_path) as writer:
        _fill(writer, 3)
        with open_database(config, tmp_path, read_only=True) as reader:
            assert reader.size == 3
        code = "x = 99\n"
        writer.add(iteration=3, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code), score=99.0)
        with open_database(config, tmp_path, read_only=True) as reader:
            assert reader.size == 4 and reader.best().score == 99.0
