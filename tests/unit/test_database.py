"""The program database on SQLite and PostgreSQL: one suite, run on both through the `database_url` fixture."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.errors import CampaignNotFound, RunDirError
from evolve.population import IslandPopulation, attach
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage._orm import head, make_engine
from evolve.storage.database import ProgramDatabase, Summary
from tests.unit.old_database import write_first_schema

FEATURES = [FeatureDimension(name="spread", min=0.0, max=1.0, bins=4)]


def _db(url, **overrides) -> ProgramDatabase:
    config = DatabaseConfig(**{"islands": 3, "migration_count": 1, **overrides})
    return ProgramDatabase(url, "test", "p", config, FEATURES)


def _population(db) -> IslandPopulation:
    """The islands of `db`'s programs, rebuilt from its rows and following its commits."""
    return attach(IslandPopulation(db.config, FEATURES, seed=1), db)


def _add(db, iteration, score, spread=0.5, island=0, parent=None, status=ProgramStatus.VALID):
    code = f"x = {iteration}\n"
    return db.add(iteration=iteration, status=status, code=code, code_hash=normalized_hash(code), score=score,
                  features={"spread": spread}, parent=parent, island=island, proposer="t")


def _same(program):
    """A program as stored: `created_at` read back loses its time zone on SQLite, so it is left out."""
    return None if program is None else dataclasses.replace(program, created_at=None)


def _sql(url, query, **params):
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return result.fetchall() if result.returns_rows else None
    finally:
        engine.dispose()


def write_first_schema_at(url: str, campaign: str, problem: str) -> None:
    """A database as the first evolve wrote it (before Alembic), on either database."""
    if url.startswith("sqlite"):
        write_first_schema(url.split(":///", 1)[1], campaign, problem)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE campaigns (id SERIAL PRIMARY KEY, name VARCHAR(255) UNIQUE, "
                          "problem VARCHAR(255), config JSON, created_at TIMESTAMP WITH TIME ZONE)"))
        conn.execute(text("CREATE TABLE programs (id SERIAL PRIMARY KEY, campaign_id INTEGER, iteration INTEGER, "
                          "status VARCHAR(32), code TEXT, code_hash VARCHAR(64), score FLOAT, metrics JSON, "
                          "features JSON, feedback TEXT, error TEXT, parent_id INTEGER, island INTEGER, "
                          "generation INTEGER, proposer VARCHAR(255), proposal TEXT, eval_seconds FLOAT, "
                          "propose_seconds FLOAT, created_at TIMESTAMP WITH TIME ZONE)"))
        conn.execute(text("INSERT INTO campaigns VALUES (1, :c, :p, '{}', '2026-11-01 00:00:00+00')"),
                     {"c": campaign, "p": problem})
        conn.execute(text("INSERT INTO programs VALUES (1, 1, 0, 'valid', 'x = 0', 'h0', 1.5, '{}', '{}', '', '', "
                          "NULL, 0, 0, 'initial', '', 0.1, NULL, '2026-11-01 00:00:00+00')"))
        conn.execute(text("SELECT setval('campaigns_id_seq', 1); SELECT setval('programs_id_seq', 1)"))
    engine.dispose()


def test_each_program_is_committed_at_once(database_url):
    db = _db(database_url)
    _add(db, 0, 1.0)
    _add(db, 1, 2.0, island=1)
    assert _sql(database_url, "select count(*) from programs") == [(2,)]  # a second, independent connection
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split(":///", 1)[1]) as raw:
            assert raw.execute("pragma journal_mode").fetchone()[0] == "wal"
    db.close()


def test_writes_off_the_event_loop_commit_in_order_and_index_even_when_cancelled(database_url):
    """`aadd` and `arecord_call` commit on the writer thread while the loop goes on; a caller cancelled
    while its program is being written still has it committed and indexed (nothing half-known)."""
    import asyncio
    import threading

    db = _db(database_url)
    first = _add(db, 0, 1.0)
    writer_started, release = threading.Event(), threading.Event()

    def slow_insert(row, *rest, insert=db._insert_program):  # holds the writer thread until the loop has moved on
        writer_started.set()
        release.wait(30)
        insert(row, *rest)

    async def scenario():
        code = "x = 'cancelled'\n"
        db._insert_program = slow_insert
        task = asyncio.create_task(db.aadd(iteration=1, status=ProgramStatus.VALID, code=code,
                                           code_hash=normalized_hash(code), score=5.0, parent=first,
                                           features={"spread": 0.1}, proposer="t"))
        while not writer_started.is_set():  # noqa: ASYNC110 (a thread's Event: the loop runs while the writer works)
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # the cancellation waits for the commit
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        del db._insert_program
        await db.arecord_call(iteration=2, parent_hash=first.code_hash, messages=[{"role": "user", "content": "q"}],
                              model="m", response="a")
        later = await db.aadd(iteration=2, status=ProgramStatus.INVALID, code="y = 1\n",
                              code_hash=normalized_hash("y = 1\n"), parent=first, error="no", proposer="t")
        return later

    later = asyncio.run(scenario())
    assert db.best().score == 5.0 and db.iterations == 2  # the cancelled caller's program, indexed
    assert [r[0] for r in _sql(database_url, "select iteration from programs order by id")] == [0, 1, 2]
    assert later.id == max(r[0] for r in _sql(database_url, "select id from programs"))
    assert [c["response"] for c in db.calls()] == ["a"]
    db.close()


def test_a_write_on_the_loop_commits_after_the_writes_queued_before_it(database_url):
    """Rows and calls keep the order they were asked for (replay plays the calls in it), whichever thread
    commits them."""
    import asyncio
    import threading

    db = _db(database_url)
    first = _add(db, 0, 1.0)
    release = threading.Event()

    def slow_insert(row, *rest, insert=db._insert_program):
        release.wait(30)
        insert(row, *rest)

    async def scenario():
        db._insert_program = slow_insert
        queued = asyncio.create_task(db.aadd(iteration=1, status=ProgramStatus.INVALID, code="a = 1\n",
                                             code_hash=normalized_hash("a = 1\n"), parent=first, proposer="t"))
        await asyncio.sleep(0.05)  # the aadd is on the writer, held
        del db._insert_program
        threading.Timer(0.3, release.set).start()
        now = db.add(iteration=2, status=ProgramStatus.INVALID, code="b = 2\n", code_hash=normalized_hash("b = 2\n"),
                     parent=first, proposer="t")  # waits for the queued one, then commits
        return await queued, now

    queued, now = asyncio.run(scenario())
    assert queued.id < now.id
    assert [r[0] for r in _sql(database_url, "select iteration from programs order by id")] == [0, 1, 2]
    db.close()


def test_initial_program_seeds_every_island_and_best_tracks_max(database_url):
    db = _db(database_url)
    population = _population(db)
    initial = _add(db, 0, 1.0)
    assert population.island_best() == [1.0, 1.0, 1.0]
    child = _add(db, 1, 3.0, island=2, parent=initial)
    assert db.best().id == child.id and child.generation == 1 and child.parent_id == initial.id
    assert population.island_best() == [1.0, 1.0, 3.0]
    _add(db, 2, 0.0, island=2, status=ProgramStatus.INVALID)
    assert db.best().id == child.id
    db.close()


def test_resume_rebuilds_the_same_indexes(database_url):
    db = _db(database_url, migration_interval=1)
    population = _population(db)
    initial = _add(db, 0, 1.0)
    for i in range(1, 10):
        _add(db, i, float(i % 4), spread=i / 10, island=i % 3, parent=initial)
    moves = population.migrate()
    assert moves
    db.record_migrations(moves, 9)
    _add(db, 10, 0.0, status=ProgramStatus.EDIT_FAILED)

    def state(d, pop):
        islands = pop.island_list
        return (pop.island_best(), _same(d.best()), _same(d.initial()), pop.grids(),
                [sorted(i.member_set) for i in islands], [i.top for i in islands], [i.migrants for i in islands],
                d.size, d.iterations, d.last_iteration, [_same(p) for p in d.recent_failures()], d.total_cost,
                d.spend())

    before = state(db, population)
    db.close()
    again = _db(database_url, migration_interval=1)
    assert state(again, _population(again)) == before  # full programs too: best, initial and failures with their code
    again.close()


def test_sampled_programs_come_whole_after_a_reopen(database_url):
    db = _db(database_url)
    initial = _add(db, 0, 1.0)
    added = {p.id: p for p in [initial] + [_add(db, i, float(i), spread=i / 30, island=i % 3, parent=initial)
                                           for i in range(1, 30)]}
    db.close()
    again = _db(database_url)
    population = _population(again)
    for n in range(100):
        chosen = population.select(n % 3)
        parent, *inspirations = again.get_many([chosen.parent, *chosen.inspirations])
        for program in (parent, *inspirations):
            assert _same(program) == _same(added[program.id])  # code, metrics, features: all read back on demand
    assert _same(again.get(initial.id)) == _same(initial) and again.get(10 ** 6) is None
    again.close()


def test_ring_migration_sends_best_to_next_island(database_url):
    db = _db(database_url)
    population = _population(db)
    initial = _add(db, 0, 1.0)
    star = _add(db, 1, 9.0, island=1, parent=initial)
    assert star.id not in population.island_list[2].member_set
    assert (star.id, 2) in population.migrate()
    assert star.id in population.island_list[2].member_set and population.island_best()[2] == 9.0
    again = population.migrate()
    assert (star.id, 2) not in again  # never sent twice to the same island
    assert star.id in population.island_list[0].member_set or (star.id, 0) in again
    db.close()


def test_grid_keeps_the_better_program_per_cell(database_url):
    db = _db(database_url)
    population = _population(db)
    _add(db, 0, 1.0, spread=0.9)
    low = _add(db, 1, 2.0, spread=0.1)
    high = _add(db, 2, 5.0, spread=0.12)  # same cell as `low`
    worse = _add(db, 3, 0.5, spread=0.13)
    cell_occupants = set(population.grids()[0].values())
    assert high.id in cell_occupants and low.id not in cell_occupants and worse.id not in cell_occupants
    db.close()


def test_sampling_reads_no_rows_and_inspirations_exclude_parent(database_url):
    db = _db(database_url, num_top_inspirations=2, num_diverse_inspirations=2)
    population = _population(db)
    initial = _add(db, 0, 1.0)
    for i in range(1, 40):
        _add(db, i, float(i), spread=(i % 8) / 8, island=i % 3, parent=initial)
    statements = []
    event.listen(db._engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    islands_seen = set()
    for n in range(300):
        chosen = population.select(n % 3)
        if n == 0:
            assert statements == [], "choosing must use the population's memory, not the database"
        parent, *inspirations = db.get_many([chosen.parent, *chosen.inspirations])
        assert parent.status is ProgramStatus.VALID
        assert parent.id not in {p.id for p in inspirations}
        assert len({p.id for p in inspirations}) == len(inspirations) <= 4
        islands_seen.add(parent.island)
    assert len(statements) <= 300, "a selection's programs are read in one query at most"
    assert islands_seen == {0, 1, 2}
    db.close()


def test_seen_finds_evaluated_programs_by_normalised_hash(database_url):
    db = _db(database_url)
    _add(db, 0, 1.0)
    _add(db, 1, 0.0, status=ProgramStatus.INVALID)
    assert db.seen(normalized_hash("x = 0\n# comment\n")).iteration == 0
    assert db.seen(normalized_hash("x = 1\n")).status is ProgramStatus.INVALID
    assert db.seen(normalized_hash("x = 2\n")) is None
    db.close()


def test_sampling_an_empty_database_says_why(database_url):
    db = _db(database_url)
    with pytest.raises(LookupError, match="no valid program"):
        _population(db).select(0)
    db.close()


def test_two_campaigns_share_one_database(database_url):
    a = ProgramDatabase(database_url, "a", "p", DatabaseConfig(islands=1))
    b = ProgramDatabase(database_url, "b", "p", DatabaseConfig(islands=1))
    _add(a, 0, 1.0)
    assert b.size == 0 and b.best() is None and a.size == 1
    a.close()
    b.close()


def test_calls_are_stored_compressed_and_read_back_as_recorded(database_url):
    db = _db(database_url)
    long = [{"role": "system", "content": "You improve programs.\n" * 200},
            {"role": "user", "content": "def f():\n    return 1\n" * 300}]
    db.record_call(iteration=1, parent_hash="p", messages=long, inspiration_hashes=["a", "b"], model="m",
                   response="SEARCH/REPLACE", prompt_tokens=7, completion_tokens=3, cost=0.5, seconds=1.5)
    db.record_call(iteration=2, parent_hash="p", messages=[{"role": "user", "content": "?"}], model="m",
                   error="timeout")
    stored = _sql(database_url, "select length(data), messages from llm_calls join llm_messages on call_id = id "
                                "order by id")
    assert stored[0][0] < len(str(long)) / 10 and stored[0][1] in ([], "[]")  # compressed, apart, not as JSON
    # a row written before revision 0002 keeps its messages as JSON and is read the same way
    _sql(database_url, "insert into llm_calls (campaign_id, iteration, parent_hash, inspiration_hashes, model, "
                       "messages, response, error, prompt_tokens, completion_tokens, cost, seconds, created_at) "
                       "values (:c, 3, 'p', '[]', 'old', :m, 'r', '', 0, 0, 0, 0, '2026-11-01 00:00:00')",
         c=db.campaign_id, m='[{"role": "user", "content": "old"}]')
    calls = db.calls()
    assert [c["messages"] for c in calls] == [long, [{"role": "user", "content": "?"}],
                                               [{"role": "user", "content": "old"}]]
    assert (calls[0]["inspiration_hashes"], calls[0]["response"], calls[0]["cost"]) == \
        (["a", "b"], "SEARCH/REPLACE", 0.5)
    assert (calls[1]["response"], calls[1]["error"]) == (None, "timeout") and "data" not in calls[0]
    assert db.spend()["m"]["calls"] == 2 and db.spend()["m"]["failed"] == 1
    db.close()


def test_status_figures_come_from_sql(database_url):
    db = _db(database_url)
    _add(db, 0, 1.0)
    failed = [_add(db, i, 0.0, status=ProgramStatus.EVALUATOR_ERROR) for i in (1, 2)]
    _add(db, 3, 2.0)
    assert db.latest(ProgramStatus.EVALUATOR_ERROR).id == failed[-1].id
    assert db.latest(ProgramStatus.EDIT_FAILED) is None
    fields = Summary._fields
    assert [tuple(s) for s in db.summaries()] == [tuple(getattr(p, f) for f in fields) for p in db.programs()]
    db.close()


def test_a_database_from_an_older_evolve_is_upgraded_in_place(database_url):
    write_first_schema_at(database_url, "old", "p")
    with pytest.raises(CampaignNotFound, match=r"older evolve.*evolve upgrade RUN_DIR"):
        ProgramDatabase(database_url, "old", "p", DatabaseConfig(islands=2), read_only=True)
    db = ProgramDatabase(database_url, "old", "p", DatabaseConfig(islands=2))
    assert db.best().score == 1.5 and db.best().cost == 0.0 and db.best().validation is None
    child = db.add(iteration=1, status=ProgramStatus.VALID, code="x = 1", code_hash="h1", score=2.0, cost=0.25,
                   prompt_tokens=10, choice="thompson: because", parent=db.best())
    assert db.total_cost == 0.25 and db.get(child.id).choice == "thompson: because"
    db.close()
    assert _sql(database_url, "select version_num from alembic_version") == [(head(),)]  # stamped, then upgraded
    assert _sql(database_url, "select code_length from programs order by id") == [(5,), (5,)]  # filled in
    with ProgramDatabase(database_url, "old", "p", DatabaseConfig(islands=2), read_only=True) as reader:
        assert reader.best().id == child.id


def test_a_database_of_a_newer_evolve_is_refused_in_one_line(database_url):
    make_engine(database_url).dispose()
    _sql(database_url, "update alembic_version set version_num = '9999_future'")
    for read_only in (False, True):
        with pytest.raises(RunDirError, match=r"written by a newer evolve \(revision 9999_future\); upgrade evolve$"):
            ProgramDatabase(database_url, "c", "p", read_only=read_only)
    assert _sql(database_url, "select version_num from alembic_version") == [("9999_future",)]


def test_read_only_creates_nothing_in_an_empty_database(database_url):
    if database_url.startswith("sqlite"):
        Path(database_url.split(":///", 1)[1]).touch()  # an empty file is an empty SQLite database
    with pytest.raises(CampaignNotFound, match="evolve upgrade"):
        ProgramDatabase(database_url, "c", "p", read_only=True)
    from sqlalchemy import inspect

    engine = create_engine(database_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()
    if database_url.startswith("sqlite"):
        assert Path(database_url.split(":///", 1)[1]).stat().st_size == 0


def test_a_small_program_cache_still_hands_out_whole_programs(database_url, monkeypatch):
    import evolve.storage.database

    monkeypatch.setattr(evolve.storage.database, "_CACHED_PROGRAMS", 3)  # far fewer than a sample needs at once
    db = _db(database_url, num_top_inspirations=2, num_diverse_inspirations=2)
    population = _population(db)
    initial = _add(db, 0, 1.0)
    added = {p.id: p for p in [initial] + [_add(db, i, float(i), spread=(i % 8) / 8, island=i % 3, parent=initial)
                                           for i in range(1, 20)]}
    for n in range(200):
        chosen = population.select(n % 3)
        parent, *inspirations = db.get_many([chosen.parent, *chosen.inspirations])
        assert [_same(p) for p in (parent, *inspirations)] == [_same(added[p.id]) for p in (parent, *inspirations)]
        assert parent.code == f"x = {parent.iteration}\n"
    assert len(db._cache) <= 3  # the cache stays bounded
    db.close()
