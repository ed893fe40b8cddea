"""A run dir's database is opened one way; read-only, it creates and changes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from evolve.config import Config, DatabaseConfig, FeatureDimension
from evolve.engine.replay import Recording
from evolve.errors import CampaignNotFound, ReadOnlyDatabase, RunDirError
from evolve.population import restore_population
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage.rundir import campaign_name, load_config, open_database, upgrade_database, write_config
from tests.unit.test_database import write_first_schema_at

FEATURES = [FeatureDimension(name="spread", min=0.0, max=1.0, bins=4)]


def _config(circle_problem, url: str | None = None, **changes) -> Config:
    """A run's config; a PostgreSQL `url` becomes `database.url`, SQLite stays the run dir's programs.db."""
    problem = type(circle_problem)(**{**circle_problem.__dict__, "features": FEATURES})
    url = None if url is None or url.startswith("sqlite") else url
    return Config(problem=problem, database=DatabaseConfig(islands=2, url=url), seed=5, **changes)


def _tables(url: str) -> dict[str, int]:
    """Rows per table, through a connection of its own."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"select count(*) from {t}")).scalar()
                    for t in inspect(conn).get_table_names()}
    finally:
        engine.dispose()


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


def test_read_only_creates_nothing_and_refuses_writes(circle_problem, tmp_path, database_url):
    config = _config(circle_problem, database_url)
    write_config(config, tmp_path)
    if config.database.url is None:
        with pytest.raises(RunDirError, match="never started"):
            open_database(config, tmp_path, read_only=True)
        assert not (tmp_path / "programs.db").exists()
    else:
        with pytest.raises(CampaignNotFound, match="evolve upgrade"):
            open_database(config, tmp_path, read_only=True)
        assert _tables(database_url) == {}

    with open_database(config, tmp_path) as db:
        _fill(db)
    before, rows = _digest(tmp_path), _tables(database_url)
    with open_database(config, tmp_path, read_only=True) as db:
        assert db.best().score == 5.0 and db.size == 6 and len(db.calls()) == 6
        assert [p.iteration for p in db.programs()] == list(range(6))
        with pytest.raises(ReadOnlyDatabase):
            db.add(iteration=9, status=ProgramStatus.VALID, code="y", code_hash="y", score=9.0)
        with pytest.raises(ReadOnlyDatabase):
            db.record_migrations([(1, 0)], 9)
    assert _digest(tmp_path) == before  # not a byte changed, no file added
    assert _tables(database_url) == rows

    other = Config(problem=config.problem, database=config.database, name="someone-else")
    with pytest.raises(CampaignNotFound, match="someone-else"):
        open_database(other, tmp_path, read_only=True)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM campaigns")).fetchall() == [(campaign_name(config, tmp_path),)]
    engine.dispose()


def test_every_reader_gets_the_runs_features_and_seed(circle_problem, tmp_path, database_url):
    config = _config(circle_problem, database_url)
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        population = restore_population(config, db, follow=True)
        _fill(db)
        cells = population.grids()
    loaded = load_config(tmp_path)
    assert loaded.seed == 5 and [f.name for f in loaded.problem.features] == ["spread"]
    draws = []
    for _ in range(2):
        with open_database(loaded, tmp_path, read_only=True) as db:
            population = restore_population(loaded, db)
            assert population.grids() == cells
            draws.append([population.select(0).parent for _ in range(20)])
    assert draws[0] == draws[1]
    recording = Recording.load(tmp_path)  # replay reads the same rows the same way
    assert [s.iteration for s in recording.steps] == list(range(6))


def test_an_older_database_is_refused_read_only_until_upgraded(circle_problem, tmp_path, database_url):
    config = _config(circle_problem, database_url, name="old")
    write_config(config, tmp_path)
    write_first_schema_at(database_url, "old", "circle_packing")
    with pytest.raises(CampaignNotFound, match="evolve upgrade"):
        open_database(config, tmp_path, read_only=True)
    added = upgrade_database(config, tmp_path)
    assert "programs.cost" in added and "llm_calls" in added and "llm_messages" in added
    assert upgrade_database(config, tmp_path) == []
    with open_database(config, tmp_path, read_only=True) as db:
        assert db.best().score == 1.5 and db.best().cost == 0.0


def test_a_database_of_the_revision_before_is_upgraded_by_its_migrations(circle_problem, tmp_path, database_url):
    config = _config(circle_problem, database_url)
    with open_database(config, tmp_path) as db:
        _fill(db, 3)
    engine = create_engine(database_url)  # back to revision 0001, as the evolve before this one left it
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_programs_campaign_id"))
        conn.execute(text("ALTER TABLE programs DROP COLUMN code_length"))
        conn.execute(text("DROP TABLE llm_messages"))
        conn.execute(text("DROP TABLE stops"))
        conn.execute(text("DROP TABLE tallies"))
        conn.execute(text("DROP INDEX ix_programs_campaign_status_score"))
        for index in ("ix_llm_calls_spend", "ix_llm_calls_failed", "ix_llm_calls_answered"):
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    with pytest.raises(CampaignNotFound, match=r"lacks .*llm_messages.*`evolve upgrade RUN_DIR`") as refused:
        open_database(config, tmp_path, read_only=True)
    assert f":{make_url(database_url).password}@" not in str(refused.value)  # the password is never shown
    assert sorted(upgrade_database(config, tmp_path)) == ["llm_messages", "programs.code_length", "stops", "tallies"]
    with open_database(config, tmp_path, read_only=True) as db:
        assert db.size == 3 and db.best().score == 2.0


def _schema(engine) -> dict:
    """Every table's columns, keys, indexes and constraints, as the database reports them."""
    inspector = inspect(engine)
    return {table: dict(
        columns=[(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)],
        primary_key=inspector.get_pk_constraint(table),
        foreign_keys=sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                            for f in inspector.get_foreign_keys(table)),
        indexes=sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)),
        unique=sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
    ) for table in sorted(inspector.get_table_names())}


def test_a_new_database_gets_the_schema_its_migrations_build(database_url):
    """A new database is made from the models without Alembic (for the start-up's sake): the same schema, at
    the same revision, as every migration run from an empty database."""
    from alembic import command

    from evolve.storage._orm import _alembic_config, head, make_engine, revision

    engine = create_engine(database_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    migrated = _schema(engine)
    with engine.begin() as conn:
        for table in reversed(list(inspect(conn).get_sorted_table_and_fkc_names())):
            if table[0] is not None:
                conn.execute(text(f"DROP TABLE {table[0]}"))
    assert inspect(engine).get_table_names() == []
    engine.dispose()
    made = make_engine(database_url)
    try:
        assert revision(made) == head()
        assert _schema(made) == migrated
        assert "alembic_version" in migrated and len(migrated) > 5
    finally:
        made.dispose()


def test_read_only_sees_a_live_campaign_as_it_commits(circle_problem, tmp_path, database_url):
    config = _config(circle_problem, database_url)
    with open_database(config, tmp_path) as writer:
        _fill(writer, 3)
        with open_database(config, tmp_path, read_only=True) as reader:
            assert reader.size == 3
        code = "x = 99\n"
        writer.add(iteration=3, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code), score=99.0)
        with open_database(config, tmp_path, read_only=True) as reader:
            assert reader.size == 4 and reader.best().score == 99.0
