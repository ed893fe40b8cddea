"""The readers of a large campaign (the report, the web view's data, `evolve best`) on SQLite and
PostgreSQL: the same content as when they read every full row (`tests/unit/full_rows_ui.py`), from small
columns, grouped counts and the few programs they show."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from evolve.config import Config, DatabaseConfig, FeatureDimension
from evolve.observe import aggregates
from evolve.population import IslandPopulation, attach, restore_population
from evolve.problems import get_problem
from evolve.program import ProgramStatus
from evolve.storage.database import ProgramDatabase
from evolve.storage.rundir import open_database, write_config
from evolve.ui import report
from evolve.ui.data import campaign_figures, finite, program_details
from evolve.ui.server import RunSource
from tests.unit import full_rows_ui as before

S = ProgramStatus
REFERENCES = [{"name": "known best", "value": 2.6}]
TRACEBACK = "stage smoke: Traceback (most recent call last):\n  File \"c.py\", line {a}\nIndexError: index {b} is out"
ERRORS = {S.INVALID: ["circles {a} and {b} overlap by 0.0{a}", TRACEBACK, "no solve() defined"],
          S.EDIT_FAILED: ["the SEARCH text was not found in the program", "the reply holds no SEARCH/REPLACE block",
                          "SEARCH block {a} occurs {b} times"],
          S.PROPOSAL_FAILED: ["m{a}: timeout after {b} s", "context_tokens=100: the prompt needs about {b} tokens"],
          S.EVALUATOR_ERROR: ["evaluator error in stage train: KeyError: 'score'"],
          S.DUPLICATE: ["same code as program {a}"], S.VALID: [""]}


def _config(url: str) -> Config:
    problem = dataclasses.replace(get_problem("circle_packing"),
                                  features=[FeatureDimension(name="spread", min=0.0, max=1.0, bins=4),
                                            FeatureDimension(name="gap", min=0.0, max=1.0, bins=3)])
    config = Config(problem=problem, name="scale-test",
                    database=DatabaseConfig(islands=3, url=None if url.startswith("sqlite") else url))
    return dataclasses.replace(config, llm=dataclasses.replace(config.llm, max_unapplied_in_a_row=5))


def _campaign(db: ProgramDatabase, n: int = 150) -> None:
    """Programs of every status from three models (ties, failures whose reasons differ in numbers only, a
    run of unapplied edits at the end), their calls, migrations and a held-out result for the best."""
    rng = random.Random(7)
    population = attach(IslandPopulation(db.config), db)
    valid = [db.add(iteration=0, status=S.VALID, code="x = 0\n", code_hash="h0", score=1.0, proposer="initial",
                    features={"spread": 0.5, "gap": 0.5}, feedback="initial", metrics={"sum_radii": 1.0})]
    for i in range(1, n):
        status = S.EDIT_FAILED if i > n - 6 else rng.choices(
            [S.VALID, S.INVALID, S.EDIT_FAILED, S.PROPOSAL_FAILED, S.EVALUATOR_ERROR, S.DUPLICATE],
            [5, 3, 2, 1, 0.3, 0.5])[0]
        by = rng.choice(["m1", "m2", "m3"])
        parent = rng.choice(valid[-6:])
        score = round(rng.uniform(0.5, 3.0), 1) if status is S.VALID else None  # rounded: ties
        error = rng.choice(ERRORS[status]).format(a=rng.randint(1, 3), b=rng.randint(1, 40))
        code = f"x = {i}\n" + "# padding\n" * rng.randint(0, 30)
        program = db.add(iteration=i, status=status, code=code, code_hash=f"h{i}", score=score, parent=parent,
                         island=i % 3, proposer=by, error=error, features={"spread": rng.random(), "gap": rng.random()},
                         metrics={"sum_radii": score or 0.0, "note": f"run {i}"}, feedback=f"child {i}",
                         prompt_tokens=100 + i, completion_tokens=10, cost=0.001)
        for attempt in range(1 + (i % 7 == 0)):  # some iterations asked twice
            db.record_call(iteration=i, parent_hash=parent.code_hash, model=by, prompt_tokens=100 + i,
                           messages=[{"role": "user", "content": f"improve {parent.id} ({attempt})"}],
                           response=None if status is S.PROPOSAL_FAILED else f"reply {i}", error=error)
        if status is S.VALID:
            valid.append(program)
        if i % 40 == 0:
            db.record_migrations(population.migrate(), i)
    db.set_validation(db.best().id, {"score": 2.5, "metrics": {"sum_radii": 2.5}, "feedback": "held out"})


@pytest.fixture
def run(tmp_path, database_url):
    config = _config(database_url)
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        _campaign(db)
    return tmp_path, config


def _json(value):
    return json.loads(json.dumps(finite(value), default=str))


def _reference(run_dir, config):
    """The report's data, the programs it embeds and its tables, as evolve computed them from full rows."""
    with open_database(config, run_dir, read_only=True) as db:
        data = before.campaign_data(db, config, REFERENCES)
        shown = {node["id"] for node in data["lineage"]["nodes"]}
        shown |= {pid for m in data["maps"] for row in m["ids"] for pid in row if pid is not None}
        details = {pid: before.program_detail(db, pid, config.problem.direction, 8000) for pid in sorted(shown)}
        return _json(data), _json(details), before._tables(db, config)


def test_the_report_and_the_web_views_data_are_what_the_full_rows_gave(run):
    run_dir, config = run
    data, details, tables = _reference(run_dir, config)
    assert data["failures"]["reasons"] and len(data["spend"]) == 3 and data["lineage"]["nodes"]
    with open_database(config, run_dir, read_only=True, indexes=False) as db:
        new, tallies = campaign_figures(db, config, REFERENCES)
        assert _json(new) == data
        assert _json(program_details(db, sorted(int(k) for k in details), config.problem.direction, 8000)) == details
        assert report._tables(db, config, new, tallies) == tables
        assert "proposals in a row could not be applied" in "".join(tables)  # the run at the end is shown
        given = campaign_figures(db, config, REFERENCES, restore_population(config, db))[0]
        assert _json(given) == data  # a running campaign's own population draws the same maps
        page = report.write_report(run_dir, db, config, REFERENCES).read_text()
        assert "_hashes" not in db.__dict__  # the store's indexes (a scan of every row) were never built
    embedded = json.loads(page.split("window.EVOLVE_EMBEDDED = ", 1)[1].split(";</script>", 1)[0]
                          .replace("<\\/", "</"))
    assert embedded["data"] == [data] and embedded["programs"] == [details]
    assert "\n".join(tables) in page
    source = RunSource(run_dir)  # the web view: the same data, its reference lines aside
    try:
        served = _json(source.data())
        assert "_hashes" not in source._db.__dict__
    finally:
        source.close()
    assert {k: v for k, v in served.items() if k not in ("version", "references")} == \
        {k: v for k, v in data.items() if k != "references"}


def test_no_reader_loads_every_full_row(run, monkeypatch):
    run_dir, config = run
    full_rows: list[int] = []
    statements: list[str] = []
    whole = ProgramDatabase._read_many
    monkeypatch.setattr(ProgramDatabase, "_read_many", lambda self, ids: full_rows.extend(ids) or whole(self, ids))
    for name in ("programs", "summaries", "_rebuild"):
        monkeypatch.setattr(ProgramDatabase, name, lambda *_, _name=name, **__: pytest.fail(f"{_name} was called"))

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        with open_database(config, run_dir, read_only=True, indexes=False) as db:
            report.write_report(run_dir, db, config, REFERENCES)
            shown = len(full_rows)
            best, initial = aggregates.leaders(db)
        source = RunSource(run_dir)
        try:
            source.data()
        finally:
            source.close()
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert (best.id, initial.id) == (full_rows[0], full_rows[1])  # the report's first reads: the two it compares
    assert 10 < shown < 75 and len(full_rows) < 2 * shown  # of 150 programs: those shown, their parents, the top 10
    wide = [s for s in statements if "programs.code," in s]
    assert wide and all(" IN (" in s for s in wide), wide  # full rows only by id


def test_best_and_initial_by_query_are_the_tallys(run):
    run_dir, config = run
    with open_database(config, run_dir, read_only=True, indexes=False) as db:
        assert aggregates.leaders(db) == aggregates.top_programs(db, aggregates.current(db))
    with open_database(config, run_dir, read_only=True) as db:
        best, initial = aggregates.leaders(db)
        assert (best.id, best.score, initial.id) == (db.best().id, db.best().score, db.initial().id)


@pytest.mark.e2e
def test_the_report_at_a_stop_draws_the_campaigns_own_population(circle_problem, tmp_path, monkeypatch):
    from evolve.config import BudgetConfig, LLMConfig, RayConfig
    from evolve.engine.campaign import Campaign
    from evolve.ui import data

    config = Config(problem=circle_problem, seed=1, progress="off", llm=LLMConfig(kind="offline", concurrency=2),
                    database=DatabaseConfig(islands=2), ray=RayConfig(start_after=1e9),  # local slots only
                    budget=BudgetConfig(iterations=12))
    monkeypatch.setattr(data, "restore_population", lambda *_, **__: pytest.fail("the population was rebuilt"))
    Campaign(config, tmp_path, observers=[report.ReportWriter()]).run()
    page = (tmp_path / "report.html").read_text()
    monkeypatch.undo()
    with open_database(config, tmp_path, read_only=True, indexes=False) as db:
        data_now = campaign_figures(db, config)[0]
    embedded = json.loads(page.split("window.EVOLVE_EMBEDDED = ", 1)[1].split(";</script>", 1)[0]
                          .replace("<\\/", "</"))
    assert embedded["data"][0]["maps"] == _json(data_now["maps"]) and data_now["iterations"] == 12


def test_the_reports_views_from_the_charts_rows_are_what_their_own_queries_give(run):
    from evolve.ui.genealogy import genealogy
    from evolve.ui.series import cost_over_time
    from evolve.ui.table import Reasons, TableQuery, program_page, report_table

    run_dir, config = run
    direction = config.problem.direction
    with open_database(config, run_dir, read_only=True, indexes=False) as db:
        rows = campaign_figures(db, config, REFERENCES)[1].rows
        assert _json(genealogy(db, direction, limit=20, programs=rows)) == _json(genealogy(db, direction, limit=20))
        assert _json(cost_over_time(db, rows)) == _json(cost_over_time(db))
        assert len(cost_over_time(db)["models"]) == 3
        query = TableQuery()
        query.size = 150  # every program: failures with their labels among the rows
        full = program_page(db, direction, query, Reasons())
        table = report_table(db, direction, most=150)
        assert table["rows"] == full["rows"] and any(row["reason"] for row in table["rows"])


def _embedded(page: str) -> dict:
    """The data a report embeds, without the time it was written."""
    embedded = json.loads(page.split("window.EVOLVE_EMBEDDED = ", 1)[1].split(";</script>", 1)[0].replace("<\\/", "</"))
    del embedded["written"]
    return embedded


def _more(db: ProgramDatabase, population, n: int, writer: report.ReportWriter, seed: int) -> None:
    """`n` more iterations: children of recent valid programs (some failed, with calls), each told to `writer`."""
    rng = random.Random(seed)
    valid = list(db.read_many(population.leaders()).values())
    for _ in range(n):
        i = db.last_iteration + 1
        status = rng.choice([S.VALID, S.VALID, S.INVALID, S.EDIT_FAILED])
        parent = rng.choice(valid)
        error = "" if status is S.VALID else rng.choice(ERRORS[status]).format(a=i, b=rng.randint(1, 9))
        db.record_call(iteration=i, parent_hash=parent.code_hash, model="m4", prompt_tokens=5,
                       messages=[{"role": "user", "content": f"improve {parent.id}"}], response=f"reply {i}")
        program = db.add(iteration=i, status=status, code=f"x = {i}\n", code_hash=f"more{i}",
                         score=rng.uniform(0.5, 3.5) if status is S.VALID else None, parent=parent, island=i % 3,
                         proposer="m4", error=error, features={"spread": rng.random(), "gap": rng.random()},
                         metrics={"sum_radii": 1.0}, feedback=f"more {i}", cost=0.002)
        valid += [program] if status is S.VALID else []
        writer.committed(program, False)


def test_a_report_kept_up_to_date_across_a_resume_is_the_full_rebuild(run, monkeypatch):
    from concurrent.futures import Future

    run_dir, config = run
    monkeypatch.setattr(report.ReportWriter, "REFRESH_EVERY", 7)  # refreshes between the stops
    for invocation in range(2):  # a campaign, then its resume: each keeps its report up to date, then stops
        with open_database(config, run_dir) as db:
            population = restore_population(config, db, follow=True)
            writer = report.ReportWriter()
            writer.database(db)
            writer.population(population)
            writer.started(config, run_dir)
            writer._references = Future()
            writer._references.set_result(REFERENCES)
            writer._refresh.result()
            assert writer._details  # the shown programs' details were read off the event loop
            _more(db, population, 30, writer, seed=invocation)
            best = db.best()
            if best.id in writer._details:  # a shown program's held-out result changes after it was read
                db.set_validation(best.id, {"score": 9.0 + invocation, "metrics": {}, "feedback": "again"})
            writer.stopped(config, run_dir, db)
            kept = (run_dir / "report.html").read_text()
            full = report.write_report(run_dir, db, config, REFERENCES, population).read_text()
            assert _embedded(kept) == _embedded(full)
            assert kept.split("window.EVOLVE_EMBEDDED", 1)[0] == full.split("window.EVOLVE_EMBEDDED", 1)[0]
    with open_database(config, run_dir, read_only=True) as db:  # and both are what the full rows give
        data, details, _ = _reference(run_dir, config)
    assert _embedded(full)["data"] == [data] and _embedded(full)["programs"] == [details]
