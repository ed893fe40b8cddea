"""`evolve status`: the state of a campaign (running, finished, interrupted, failed) from its lock and its
recorded end, its figures in SQL (the same as the in-memory indexes give, on SQLite and PostgreSQL), the
`--json` schema, natural scores for minimised problems, and what the command imports."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import create_engine, text

from evolve.cli.commands import active_seconds
from evolve.config import Config, DatabaseConfig
from evolve.observe import aggregates
from evolve.observe.outcomes import model_outcomes, trailing_unapplied
from evolve.observe.status import STATES, campaign_state, read_status
from evolve.population import IslandPopulation, attach, restore_population
from evolve.program import ProgramStatus
from evolve.proposals.edits import normalized_hash
from evolve.storage.database import ProgramDatabase, count_improvements
from evolve.storage.lock import Holder
from evolve.storage.rundir import load_config, open_database, write_config

ROOT = Path(__file__).resolve().parents[2]
HERE = socket.gethostname()
S = ProgramStatus


def test_evaluation_rate_leaves_out_the_idle_time_between_resumes():
    start = datetime(2026, 1, 1, 12)
    first = [start + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    resumed = [start + timedelta(hours=5, seconds=s) for s in (0, 5, 10)]  # resumed five hours later
    assert active_seconds(resumed + first) == 40.0
    assert active_seconds(first, idle_after=5) == 0.0
    assert active_seconds(first[:1]) == 0.0 and active_seconds([]) == 0.0


# -- the state -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _row(pid: int, host: str = HERE, age: float = 1.0) -> aggregates.LockRow:
    return aggregates.LockRow(host, pid, "2026-11-22 10:00:00", time.time() - age, "/runs/x")


def _stop(state: str, pid: int, host: str = HERE) -> aggregates.Stop:
    return aggregates.Stop(state, f"why {state}", time.time(), 7, host, pid)


def test_a_live_controller_is_running_whatever_was_recorded_before(dead_pid):
    me = os.getpid()
    state = campaign_state(None, _row(me), _stop("finished", dead_pid))
    assert state.state == "running" and state.controller.pid == me and state.heartbeat is not None
    starting = campaign_state(Holder(HERE, me, "now"), None, None)  # the lock file, before the row is claimed
    assert starting.state == "running" and "starting" in starting.reason
    remote = campaign_state(None, _row(12345, host="elsewhere", age=5), None)  # a fresh heartbeat elsewhere
    assert remote.state == "running"


def test_a_stopped_campaign_is_what_it_recorded(dead_pid):
    for recorded in ("finished", "interrupted", "failed"):
        state = campaign_state(None, None, _stop(recorded, dead_pid))
        assert (state.state, state.reason) == (recorded, f"why {recorded}") and state.stopped_at is not None
    assert campaign_state(None, None, None).state == "unknown"


def test_a_controller_that_died_without_recording_its_end_is_interrupted(dead_pid):
    older = _stop("finished", dead_pid + 1)  # an earlier invocation's end, not this controller's
    for holder, row in ((Holder(HERE, dead_pid), None), (None, _row(dead_pid)),
                        (Holder(HERE, dead_pid), _row(dead_pid)),
                        (None, _row(4242, host="elsewhere", age=600))):  # elsewhere: its heartbeat stopped
        state = campaign_state(holder, row, older)
        assert state.state == "interrupted" and "the controller died" in state.reason, (holder, row)
    # it recorded its end, then died before it released the lock: what it recorded holds
    assert campaign_state(Holder(HERE, dead_pid), _row(dead_pid), _stop("failed", dead_pid)).state == "failed"


def test_a_reused_pid_does_not_make_a_dead_controller_live():
    me = os.getpid()  # alive, but its row's heartbeat is ten minutes old: the pid was reused
    assert campaign_state(Holder(HERE, me), _row(me, age=600), None).state == "interrupted"


# -- the figures, from SQL ---------------------------------------------------------------------------
def _config(circle_problem, url: str, direction: str = "maximize") -> Config:
    problem = type(circle_problem)(**{**circle_problem.__dict__, "direction": direction})
    return Config(problem=problem, name="status-test",
                  database=DatabaseConfig(islands=3, url=None if url.startswith("sqlite") else url))


def _campaign(db) -> None:
    """Programs of every status from two models, failed calls, a migration, a run of unapplied edits."""
    population = attach(IslandPopulation(db.config), db)

    def add(i, status, score=None, parent=None, by="m1", error=""):
        code = f"x = {i}\n"
        program = db.add(iteration=i, status=status, code=code, code_hash=normalized_hash(code), score=score,
                         parent=parent, island=i % 3, proposer=by, error=error)
        db.record_call(iteration=i, parent_hash="h", messages=[{"role": "user", "content": "?"}], model=by,
                       response=None if status is S.PROPOSAL_FAILED else "!", error=error, cost=0.01, prompt_tokens=5)
        return program

    initial = add(0, S.VALID, 1.0, by="initial")
    a = add(1, S.VALID, 2.0, initial)
    add(2, S.INVALID, parent=a, error="stage smoke: Traceback (most recent call last):\n  File \"c.py\", line 3\n"
                                       "IndexError: index 9 is out of bounds")
    add(3, S.INVALID, parent=a, by="m2", error="stage smoke: Traceback (most recent call last):\nIndexError: x")
    b = add(4, S.VALID, 1.5, a, by="m2")  # worse than its parent
    add(5, S.EVALUATOR_ERROR, parent=b, error="evaluator error in stage train: KeyError: 'score'")
    add(6, S.DUPLICATE, parent=b, error="same code as program 2")
    add(7, S.PROPOSAL_FAILED, parent=b, by="m2", error="m2: APIConnectionError: refused")
    c = add(8, S.VALID, 3.0, b, by="m2")
    db.record_migrations(population.migrate(), 8)
    add(9, S.VALID, 3.0, c)  # a tie: not a new best
    add(10, S.EDIT_FAILED, parent=c, error="the SEARCH text was not found in the program")
    add(11, S.PROPOSAL_FAILED, parent=c, error="m1: timeout")
    add(12, S.EDIT_FAILED, parent=c, by="m2", error="the reply holds no SEARCH/REPLACE block")


@pytest.fixture
def run_dir(tmp_path, circle_problem, database_url):
    config = _config(circle_problem, database_url)
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        _campaign(db)
    return tmp_path


def test_the_figures_in_sql_are_what_the_indexes_and_the_rows_give(run_dir, circle_problem, database_url):
    config = _config(circle_problem, database_url)
    with open_database(config, run_dir, read_only=True) as indexed:
        programs = list(indexed.programs())
        best, initial, islands, counts = indexed.best(), indexed.initial(), None, indexed.counts()
        islands = restore_population(config, indexed).island_best()
        iterations = indexed.iterations
    with open_database(config, run_dir, read_only=True, indexes=False) as db:
        assert "_hashes" not in db.__dict__  # nothing built yet
        counted = aggregates.current(db)  # no tally kept: every row
        assert counted == aggregates.tally(db)
        figures = aggregates.figures(counted)
        top, first = aggregates.top_programs(db, counted)
        assert (top.id, top.score, first.id) == (best.id, best.score, initial.id)
        assert top.created_at == best.created_at.replace(tzinfo=top.created_at.tzinfo)
        assert aggregates.island_best(db, 3, counted) == islands
        assert figures.counts == counts and figures.iterations == iterations
        assert figures.outcomes == model_outcomes(programs)
        assert aggregates.unapplied_tail(db) == trailing_unapplied(programs) and aggregates.unapplied_tail(db)[0] == 2
        assert figures.last_iteration == 12
        assert figures.active_seconds == pytest.approx(active_seconds([p.created_at for p in programs]), abs=1e-3)
        assert figures.active_seconds > 0 and aggregates.tally(db, idle_after=0.0).active_seconds == 0.0
        spend = db.spend()
        assert spend == db.spend(improvements=counted.improvements)
        assert "_valid" not in db.__dict__  # still not built: every figure came from SQL
    children = [p for p in programs if p.iteration > 0 and p.status.is_evaluated()]
    assert (figures.children_evaluated, figures.children_valid) == \
        (len(children), sum(p.status is S.VALID for p in children))
    assert figures.failures[("invalid", "stage smoke: IndexError")] == 2
    assert figures.failures[("edit_failed", "SEARCH not found")] == 1
    assert figures.failures[("evaluator_error", "evaluator error in stage train: KeyError: 'score'")] == 1
    assert ("duplicate", "same code as program N") not in figures.failures  # dropped proposals are no failures
    assert {m: (s["calls"], s["failed"], s["improvements"], s["new_bests"]) for m, s in spend.items()} == \
        {"initial": (1, 0, 0, 0), "m1": (7, 1, 1, 1), "m2": (5, 1, 1, 1)}
    assert (spend["m1"]["failing"], spend["m1"]["last_error"], spend["m2"]["failing"]) == (1, "m1: timeout", 0)


def _same(a: aggregates.Tally, b: aggregates.Tally) -> None:
    """Equal tallies (the active time summed in another order may differ in its last bits)."""
    assert dataclasses.replace(a, active_seconds=0.0) == dataclasses.replace(b, active_seconds=0.0)
    assert a.active_seconds == pytest.approx(b.active_seconds)


def test_a_kept_tally_and_the_rows_since_add_up_to_every_row(run_dir, circle_problem, database_url):
    config = _config(circle_problem, database_url)
    with open_database(config, run_dir, read_only=True, indexes=False) as db:
        whole = aggregates.tally(db)
        assert whole.improvements and whole.groups and whole.active_seconds > 0
        for split in range(whole.upto + 1):  # every split: parents before it, failures on both sides
            kept = aggregates.Tally.from_json(json.loads(json.dumps(aggregates.tally(db, until=split).to_json())))
            _same(aggregates.tally(db, kept), whole)
        assert aggregates.Tally.from_json({**whole.to_json(), "version": 0}) is None  # another form: not used
    with open_database(config, run_dir) as db:
        _same(aggregates.checkpoint(db), whole)
        code = "x = 'after'\n"
        db.add(iteration=13, status=S.VALID, code=code, code_hash=normalized_hash(code), score=9.0, parent=db.best(),
               island=1, proposer="m2")
        now = aggregates.current(db)
        _same(now, aggregates.tally(db))
        assert (now.upto, now.best.score, now.improvements["m2"]) == (whole.upto + 1, 9.0, [2, 2])
        assert aggregates.figures(now).counts["valid"] == aggregates.figures(whole).counts["valid"] + 1


def test_a_tally_keeps_the_commonest_failure_reasons_and_counts_the_rarer_together(database_url):
    db = ProgramDatabase(database_url, "reasons")

    def add(i, status, error=""):
        db.add(iteration=i, status=status, code=f"x = {i}\n", code_hash=str(i),
               score=1.0 if status is S.VALID else None, error=error)

    add(0, S.VALID)
    singles = aggregates.MAX_REASONS + 50  # each its own reason, as varied candidates write them
    for i in range(1, singles + 1):
        add(i, S.INVALID, f"reason x{i}")
    for i in range(singles + 1, singles + 4):
        add(i, S.INVALID, "reason common")
    failures = aggregates.figures(aggregates.tally(db)).failures
    db.close()
    assert sum(failures.values()) == singles + 3 and len(failures) == aggregates.MAX_REASONS + 1
    assert failures[("invalid", "reason common")] == 3  # the commonest is kept
    assert failures[("invalid", aggregates.OTHER_REASONS)] == singles + 1 - aggregates.MAX_REASONS


def test_improvements_count_a_valid_parent_beaten_and_new_bests_in_commit_order():
    rows = [(1, None, 1.0, "init"), (2, 1, 2.0, "a"), (3, 2, 1.5, "b"), (4, 3, 1.8, "b"), (5, 99, 5.0, "a"),
            (6, 5, 5.0, "b")]
    assert count_improvements(rows) == {"a": (1, 2), "b": (1, 0)}


def test_the_json_is_the_documented_schema_and_the_state_is_recorded(run_dir):
    with open_database(load_config(run_dir), run_dir) as db:
        db.record_stop("interrupted", "interrupted by SIGTERM at 5 iterations")
        db.record_stop("finished", "budget.iterations=12 reached")
        with pytest.raises(ValueError, match="state='done': use one of finished, interrupted, failed"):
            db.record_stop("done", "?")
    data = read_status(run_dir).to_json()
    json.dumps(data)  # plain JSON
    assert list(data) == ["schema", "run_dir", "campaign", "problem", "direction", "state", "reason", "stopped_at",
                          "controller", "iterations", "programs", "valid_share", "initial_score", "best",
                          "last_improvement", "island_best", "evaluations_per_second", "active_seconds",
                          "failure_reasons", "evaluator_errors", "unapplied", "models", "ray"]
    assert data["schema"] == 1 and data["state"] in STATES
    assert (data["state"], data["reason"]) == ("finished", "budget.iterations=12 reached")  # the latest stop
    assert data["controller"]["pid"] == os.getpid() and data["controller"]["alive"] is False
    assert data["iterations"] == {"done": 12, "budget": 100}
    assert data["best"]["score"] == 3.0 and data["best"]["iteration"] == 8 and data["initial_score"] == 1.0
    assert data["last_improvement"]["iteration"] == 8 and data["last_improvement"]["iterations_since"] == 4
    assert data["failure_reasons"][0] == {"status": "invalid", "reason": "stage smoke: IndexError", "count": 2,
                                          "example": ""}  # no number masked: the reason is the text
    assert data["unapplied"]["in_a_row"] == 2 and data["evaluator_errors"]["count"] == 1
    assert [m["name"] for m in data["models"]] == ["initial", "m1", "m2"]
    assert set(data["models"][1]) >= {"calls", "cost", "proposals", "applied", "edit_failures", "valid"}
    assert data["ray"] is None  # no campaign.log: nothing said of Ray


def test_status_shows_the_last_line_of_rays_state_from_campaign_log(run_dir):
    from evolve.cli.status_view import render

    log = run_dir / "campaign.log"
    log.write_text("2026-01-02 10:00:00,001 INFO evolve.ray: Ray's 2 evaluation workers are up after 9.0 s; ...\n"
                   "2026-01-02 10:05:00,002 INFO evolve.engine.campaign: iteration 50: best 1\n")
    assert read_status(run_dir).to_json()["ray"] == {
        "where": "ray", "since": "2026-01-02 10:00:00", "line": "Ray's 2 evaluation workers are up after 9.0 s; ..."}
    fault = ("Ray was lost: Ray's head stopped answering (127.0.0.1:6379) when an evaluation worker was lost; "
             "evaluations go on in this process's 2 slots; Ray is tried again in 60 s")
    with log.open("a") as f:
        f.write(f"2026-01-02 10:06:00,003 WARNING evolve.ray: {fault}\n2026-01-02 10:06:01,000 INFO evolve.x: y\n")
    status = read_status(run_dir)
    assert status.to_json()["ray"] == {"where": "local", "since": "2026-01-02 10:06:00", "line": fault}
    console = Console(width=400, record=True)
    console.print(render(status))
    assert f"evaluations in local slots since 2026-01-02 10:06:00: {fault}" in console.export_text()


def test_a_minimised_problem_shows_natural_values(tmp_path, circle_problem, database_url):
    config = _config(circle_problem, database_url, direction="minimize")
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:  # the engine stores the negated values and maximises them
        first = db.add(iteration=0, status=S.VALID, code="a\n", code_hash="a", score=-10.0)
        db.add(iteration=1, status=S.VALID, code="b\n", code_hash="b", score=-7.5, parent=first, island=1)
        db.record_stop("finished", "done")
    status = read_status(tmp_path)
    assert (status.initial_score, status.best.score) == (10.0, 7.5)
    assert status.island_best == [10.0, 7.5, 10.0]
    from rich.console import Console

    from evolve.cli.status_view import render

    console = Console(width=120, record=True, file=io.StringIO())
    console.print(render(status))
    shown = console.export_text()
    assert re.search(r"initial score +│ 10 ", shown) and re.search(r"best score +│ 7.5 ", shown), shown
    assert "-7.5" not in shown and "-10" not in shown


def test_status_shows_a_real_example_of_each_reason_grouped_by_its_numbers(tmp_path, circle_problem, database_url):
    config = _config(circle_problem, database_url)
    write_config(config, tmp_path)
    errors = ["circles = (3, 4), expected (26, 2)", "circles = (5, 1), expected (26, 2)", "stage train: timeout=2.5s",
              "circles = (7, 7), expected (26, 2)"]
    with open_database(config, tmp_path) as db:
        first = db.add(iteration=0, status=S.VALID, code="a\n", code_hash="a", score=1.0)
        for i, error in enumerate(errors, 1):
            db.add(iteration=i, status=S.INVALID, code=f"x = {i}\n", code_hash=str(i), parent=first, error=error)
            if i == 2:
                aggregates.checkpoint(db)  # the example survives a kept tally and the rows after it
        db.record_stop("finished", "done")
    status = read_status(tmp_path)
    reasons = status.to_json()["failure_reasons"]
    assert reasons[0] == {"status": "invalid", "reason": "circles = (N, N), expected (N, N)", "count": 3,
                          "example": "circles = (3, 4), expected (26, 2)"}
    assert reasons[1] == {"status": "invalid", "reason": "stage train: timeout=Ns", "count": 1,
                          "example": "stage train: timeout=2.5s"}
    from rich.console import Console

    from evolve.cli.status_view import render

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(render(status))
    shown = console.export_text()
    assert "3 invalid, e.g. circles = (3, 4), expected (26, 2)" in shown
    assert "1 invalid: stage train: timeout=2.5s" in shown
    assert "(N, N)" not in shown and "=Ns" not in shown


def test_a_database_from_before_stops_were_recorded_is_read_as_it_is(run_dir, circle_problem, database_url):
    engine = create_engine(database_url)
    with engine.begin() as conn:  # as the evolve before this one left it: revision 0002 (no tally kept either)
        conn.execute(text("DROP TABLE stops"))
        conn.execute(text("DROP TABLE tallies"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    engine.dispose()
    status = read_status(run_dir)
    assert status.state.state == "unknown" and "no end recorded" in status.state.reason
    assert status.best.score == 3.0


def test_the_read_only_revisions_are_alembics():
    from evolve.storage._orm import REVISIONS, _scripts

    assert tuple(reversed([s.revision for s in _scripts().walk_revisions()])) == REVISIONS


# -- what the command imports ---------------------------------------------------------------------
def test_the_read_only_verbs_import_neither_ray_nor_openai_nor_hydra(tmp_path, circle_problem):
    config = _config(circle_problem, "sqlite://")
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        _campaign(db)
    probe = """
import contextlib, io, json, sys
from evolve.cli.commands import main
for argv in (["status", sys.argv[1]], ["status", "--json", sys.argv[1]], ["best", sys.argv[1]]):
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        main(argv)
    assert out.getvalue(), argv
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    imported = set(json.loads(out.stdout.splitlines()[-1]))
    assert imported & {"ray", "openai", "hydra", "alembic", "httpx"} == set(), sorted(imported)
    assert "sqlalchemy" in imported and "rich" in imported  # it did read the run


def test_failure_reasons_group_what_differs_only_in_numbers():
    reason = aggregates.failure_reason
    assert reason(S.INVALID, "solve(26) must return 26 triples, got 22") == \
        reason(S.INVALID, "solve(26) must return 26 triples, got 25") == "solve(N) must return N triples, got N"
    assert reason(S.INVALID, "stage train: Traceback (most recent call last):\n  File \"c.py\", line 9, in f\n"
                             "numpy.exceptions.AxisError: axis 2") == "stage train: numpy.exceptions.AxisError"
    assert reason(S.EDIT_FAILED, "the SEARCH text was not found in the program") == "SEARCH not found"
    assert reason(S.PROPOSAL_FAILED, "prompt needs about 9000 tokens; context_tokens=8192") == "prompt too large"
    assert reason(S.INVALID, "") == "(no reason given)"
    assert len(reason(S.INVALID, "x" * 500)) == 100
