"""The web view's views of OpenEvolve's visualizer and ShinkaEvolve's WebUI: the campaign's state and ETA,
run dirs that appear while it serves, the table of all programs, the genealogy, a sweep's runs in one chart
and cost over time; through the JSON endpoints against the database, then in a real headless Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
from pathlib import Path

import pytest

from evolve.config import Config, DatabaseConfig
from evolve.problems import get_problem
from evolve.program import ProgramStatus
from evolve.storage.rundir import open_database, write_config
from tests.e2e.test_ui import chromium, get, serving, wait_for

pytestmark = pytest.mark.e2e

HTML_ERROR = "stage evaluate: <b>bold</b><img src=x onerror=alert(1)>"


def make_run(run_dir: Path, name: str, scores: list[float | None], islands: int = 2,
             direction: str = "maximize", url: str = "") -> list:
    """A run dir written by hand: the initial program, then one child per score (None: invalid, with the
    same reason up to its numbers, those of iterations 6, 15, 24 an HTML error), each child of the best so far, on
    alternating islands, by two models at different prices."""
    import dataclasses

    problem = dataclasses.replace(get_problem("circle_packing"), direction=direction)
    config = Config(problem=problem, name=name, database=DatabaseConfig(islands=islands, url=url))
    run_dir.mkdir(parents=True)
    write_config(config, run_dir)
    out = []
    with open_database(config, run_dir) as db:
        best = db.add(iteration=0, status=ProgramStatus.VALID, code="a = 0\n", code_hash="h0", score=scores[0])
        out.append(best)
        for i, score in enumerate(scores[1:], start=1):
            status = ProgramStatus.VALID if score is not None else ProgramStatus.INVALID
            error = "" if score is not None else HTML_ERROR if i % 9 == 6 else f"solve({i}) returned {i} items"
            model = "model-a" if i % 2 else "model-b"
            program = db.add(iteration=i, status=status, code=f"a = {i}\n", code_hash=f"h{i}", score=score,
                             parent=best, island=i % islands, error=error, proposer=model,
                             cost=0.01 if model == "model-a" else 0.02)
            out.append(program)
            if score is not None and score > best.score:
                best = program
    return out


@pytest.fixture
def views_run(tmp_path) -> Path:
    """30 programs: 20 valid, 10 invalid in two reasons (3 of them an HTML error)."""
    scores = [1.0] + [None if i % 3 == 0 or i == 29 else 1.0 + i / 10 * (-1) ** i for i in range(1, 30)]
    make_run(tmp_path / "run", "views", scores)
    return tmp_path / "run"


def failure(url: str) -> tuple[int, str]:
    try:
        get(url)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["error"]
    raise AssertionError(f"{url} did not fail")


# -- the table of programs ----------------------------------------------------------------------------------
def test_the_table_pages_sorts_and_filters_on_the_server(views_run):
    with serving(views_run) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}/api/programs?run=0"
        first = get(base + "&size=7")
        assert first["total"] == 30 and first["pages"] == 5 and len(first["rows"]) == 7
        assert first["statuses"] == {"valid": 20, "invalid": 10}
        pages = [get(base + f"&size=7&page={p}")["rows"] for p in range(5)]
        ranked = [r for page in pages for r in page]
        assert len({r["id"] for r in ranked}) == 30  # every program once, across the pages
        valid = [r["score"] for r in ranked if r["status"] == "valid"]
        assert valid == sorted(valid, reverse=True) and ranked[-1]["score"] is None  # best first, failures last
        worst = get(base + "&sort=score&order=asc&size=3")["rows"]
        assert [r["score"] for r in worst] == sorted(valid)[:3]
        newest = get(base + "&sort=time&order=desc&size=5")["rows"]
        assert [r["id"] for r in newest] == [30, 29, 28, 27, 26] and newest[0]["seconds"] >= newest[-1]["seconds"]
        by_island = [r["island"] for r in get(base + "&sort=island&order=asc&size=200")["rows"]]
        assert by_island == sorted(by_island) and set(by_island) == {0, 1}
        only = get(base + "&island=1&size=200")
        assert only["total"] == 15 and {r["island"] for r in only["rows"]} == {1}

        invalid = get(base + "&status=invalid&size=200")
        assert invalid["total"] == 10 and {r["status"] for r in invalid["rows"]} == {"invalid"}
        reasons = dict(invalid["reasons"])
        assert reasons == {"invalid: solve(N) returned N items": 7,
                           "invalid: stage evaluate: <b>bold</b><img src=x onerror=alert(N)>": 3}
        html = get(base + "&reason=" + urllib.parse.quote("invalid: stage evaluate: <b>bold</b><img src=x "
                                                          "onerror=alert(N)>") + "&size=2&sort=time&order=asc")
        assert html["total"] == 3 and html["pages"] == 2 and [r["id"] for r in html["rows"]] == [7, 16]
        second = get(base + "&reason=" + urllib.parse.quote(html["rows"][0]["reason"]) + "&size=2&page=1"
                     "&sort=time&order=asc")
        assert [r["id"] for r in second["rows"]] == [25]
        assert get(base + "&reason=nothing%3A%20like%20this")["total"] == 0


def test_the_table_of_a_minimised_problem_ranks_in_natural_values(tmp_path):
    make_run(tmp_path / "run", "lengths", [-5.0, -3.0, None, -4.0, -2.5], direction="minimize")
    with serving(tmp_path / "run") as server:
        rows = get(f"http://127.0.0.1:{server.server_address[1]}/api/programs?run=0&sort=score&order=asc")["rows"]
        assert [r["score"] for r in rows] == [2.5, 3.0, 4.0, 5.0, None]


def test_bad_table_and_genealogy_requests_are_one_line_each(views_run):
    with serving(views_run) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}/api/"
        for path, expected in (("programs?sort=cost", "sort=cost: sort by one of score, time, island"),
                               ("programs?order=up", "order=up: use asc or desc"),
                               ("programs?status=gone", "status=gone: filter by one of valid, invalid"),
                               ("programs?page=-1", "page=-1: a whole number of at least 0"),
                               ("programs?size=0", "size=0: a whole number of at least 1"),
                               ("programs?island=x", "island=x: a whole number"),
                               ("genealogy?limit=0", "limit=0: the most nodes to draw, 1 to 10000"),
                               ("state?run=9", "run=9: no such run")):
            status, message = failure(base + path)
            assert status in (400, 404) and expected in message and "\n" not in message, (path, message)
        assert len(get(base + "programs?size=100000")["rows"]) == 30  # a page is at most 200 rows


def test_a_long_failure_reason_is_cut_with_an_ellipsis(tmp_path):
    from evolve.config import Config

    run = tmp_path / "run"
    run.mkdir()
    config = Config(problem=get_problem("circle_packing"), name="long")
    write_config(config, run)
    with open_database(config, run) as db:
        first = db.add(iteration=0, status=ProgramStatus.VALID, code="a = 0\n", code_hash="h0", score=1.0)
        db.add(iteration=1, status=ProgramStatus.INVALID, code="a = 1\n", code_hash="h1", parent=first,
               error="the answer " + "is much too long " * 20)
    with serving(run) as server:
        [(reason, n)] = get(f"http://127.0.0.1:{server.server_address[1]}/api/programs?run=0")["reasons"]
        assert n == 1 and reason.startswith("invalid: the answer is much") and reason.endswith("…")
        assert len(reason) == len("invalid: ") + 90


def test_the_views_read_a_campaign_in_postgresql(postgres_url, tmp_path):
    make_run(tmp_path / "run", "in-postgres", [1.0, 2.0, None, 3.0, None, 0.5], url=postgres_url)
    with serving(tmp_path / "run") as server:
        base = f"http://127.0.0.1:{server.server_address[1]}/api/"
        page = get(base + "programs?run=0&size=2")
        assert page["total"] == 6 and [r["score"] for r in page["rows"]] == [3.0, 2.0]
        assert [r["id"] for r in get(base + "programs?run=0&reason=" + urllib.parse.quote(
            "invalid: solve(N) returned N items"))["rows"]] == [3, 5]
        assert get(base + "genealogy?run=0")["shown"] == 6
        assert [m["model"] for m in get(base + "costs?run=0")["models"]] == ["model-a", "model-b"]
        assert get(base + "state?run=0")["iterations"] == 5


# -- the genealogy -------------------------------------------------------------------------------------------
def test_the_genealogy_holds_every_program_or_the_best_ones_ancestries(views_run):
    from tests.e2e.test_ui import query

    parents = dict(query(views_run, "select id, parent_id from programs"))
    with serving(views_run) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}/api/genealogy?run=0"
        whole = get(base)
        assert whole["total"] == whole["shown"] == 30 and whole["note"] == ""
        nodes = {n["id"]: n for n in whole["nodes"]}
        assert all(n["parent"] == parents[pid] for pid, n in nodes.items())
        assert {n["island"] for n in nodes.values()} == {0, 1} and [n for n in nodes.values() if n["best"]]
        best = next(n for n in nodes.values() if n["best"])
        top = max(r[0] for r in query(views_run, "select score from programs where status='valid'"))
        assert best["score"] == top
        sample = get(base + "&limit=15")
        assert sample["total"] == 30 and sample["shown"] <= 15 and "of 30 programs: the ancestries of" in sample["note"]
        kept = {n["id"] for n in sample["nodes"]}
        line, pid = [], best["id"]
        while pid is not None:
            line.append(pid)
            pid = parents[pid]
        assert set(line) <= kept  # the best program's ancestry, whole
        assert all(n["parent"] is None or n["parent"] in kept for n in sample["nodes"])
        assert len(line) > 5 and {n["id"] for n in get(base + "&limit=5")["nodes"]} == set(line[:5])  # its newest part


# -- the campaign's state ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def lock_file(run_dir: Path, pid: int) -> None:
    """The run dir's lock file as a controller leaves it (emptied when released, kept when killed)."""
    (run_dir / "campaign.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": pid,
                                                       "since": time.strftime("%Y-%m-%d %H:%M:%S")}))


def test_the_state_says_running_with_an_eta_finished_failed_stopped_or_died(tmp_path, dead_pid):
    from evolve.storage.database import ProgramDatabase

    runs = {}
    for name in ("running", "finished", "failed", "stopped", "died", "old"):
        runs[name] = tmp_path / name
        make_run(runs[name], name, [1.0, 2.0, None, 3.0])
    for name, (recorded, reason) in {"finished": ("finished", "budget.iterations=3 reached"),
                                     "failed": ("failed", "EvaluatorFailed: the evaluator raised"),
                                     "stopped": ("interrupted", "interrupted by SIGINT at 3 iterations")}.items():
        with ProgramDatabase(f"sqlite:///{runs[name] / 'programs.db'}", name) as db:
            db.record_stop(recorded, reason)
    lock_file(runs["running"], os.getpid())  # a live controller on this host
    lock_file(runs["died"], dead_pid)  # killed (SIGKILL): its lock file names it, no end recorded
    with serving(tmp_path) as server:
        port = server.server_address[1]
        numbers = {Path(r["run_dir"]).name: r["run"] for r in get(f"http://127.0.0.1:{port}/api/campaigns")}

        def state(name: str) -> dict:
            return get(f"http://127.0.0.1:{port}/api/state?run={numbers[name]}")

        assert state("old")["state"] == "unknown"  # nothing recorded (a database from before stops were)
        finished, failed, stopped, died = (state(n) for n in ("finished", "failed", "stopped", "died"))
        assert (finished["label"], finished["reason"]) == ("finished", "budget.iterations=3 reached")
        assert finished["stopped_at"] and finished["eta_seconds"] is None and finished["iterations"] == 3
        assert (failed["label"], failed["reason"]) == ("failed", "EvaluatorFailed: the evaluator raised")
        assert (stopped["label"], stopped["state"]) == ("stopped by the user", "interrupted")
        assert stopped["reason"] == "interrupted by SIGINT at 3 iterations"
        assert died["label"] == "died" and f"the controller died (pid {dead_pid}" in died["reason"]
        running = state("running")
        assert running["label"] == "running" and running["budget"] == 100 and running["iterations"] == 3
        assert running["rate_per_minute"] > 0 and running["eta_by"] == "iterations"
        assert running["eta_seconds"] == pytest.approx(97 / (running["rate_per_minute"] / 60), rel=0.01, abs=0.1)


def test_run_dirs_made_while_the_view_serves_appear_keeping_their_numbers(tmp_path):
    from evolve.ui import server as ui_server

    make_run(tmp_path / "b", "b", [1.0, 2.0])
    with serving(tmp_path) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/campaigns"
        assert [r["name"] for r in get(url)] == ["b"]
        make_run(tmp_path / "a", "a", [1.0])  # sorts before b: b keeps its number all the same
        make_run(tmp_path / "c" / "d", "d", [1.0])
        deadline = time.monotonic() + ui_server.RESCAN_SECONDS + 60
        while len(runs := get(url)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [(r["run"], r["name"]) for r in runs] == [(0, "b"), (1, "a"), (2, "d")]
        assert get(f"http://127.0.0.1:{server.server_address[1]}/api/state?run=2")["iterations"] == 0


# -- a sweep and cost over time ------------------------------------------------------------------------------
def test_the_runs_of_a_sweep_are_overlaid_and_cost_is_per_model_over_time(tmp_path, views_run):
    sweep = tmp_path / "multirun"
    for n, scores in enumerate([[1.0, 2.0, None, 1.5, 3.0], [1.0, 0.5, 4.0], [1.0]]):
        make_run(sweep / f"{n}_seed={n}", f"job{n}", scores)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    with serving(sweep) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}/api/"
        found = get(base + "sweep?run=1")
        assert found["sweep"] == str(sweep.resolve())
        curves = {r["name"]: r for r in found["runs"]}
        assert list(curves) == ["0_seed=0", "1_seed=1", "2_seed=2"] and curves["1_seed=1"]["current"]
        assert [r["label"] for r in found["runs"]] == ["0: seed=0", "1: seed=1", "2: seed=2"]
        assert (curves["0_seed=0"]["evaluation"], curves["0_seed=0"]["score"]) == ([1, 2, 5, 5], [1.0, 2.0, 3.0, 3.0])
        assert (curves["1_seed=1"]["evaluation"], curves["1_seed=1"]["best"]) == ([1, 3, 3], 4.0)
        assert curves["2_seed=2"]["evaluated"] == 1
    with serving(views_run) as server:  # not part of a sweep
        base = f"http://127.0.0.1:{server.server_address[1]}/api/"
        assert get(base + "sweep?run=0") == {"sweep": None, "runs": []}
        costs = {m["model"]: m for m in get(base + "costs?run=0")["models"]}
        assert list(costs) == ["model-a", "model-b"]
        assert costs["model-a"]["proposals"][-1] == 15 and costs["model-a"]["cost"][-1] == pytest.approx(0.15)
        assert costs["model-b"]["cost"][-1] == pytest.approx(0.28) and costs["model-b"]["cost"] == sorted(
            costs["model-b"]["cost"])
        assert all(b >= a for a, b in zip(costs["model-a"]["time"], costs["model-a"]["time"][1:]))


# -- in Chromium ---------------------------------------------------------------------------------------------
def select(driver, element_id: str, value: str) -> None:
    """Choose `value` in a select as a user would (the change event included)."""
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def table_ids(driver) -> list[int]:
    return driver.execute_script("return [...document.querySelectorAll('#programs-table tr.row')]"
                                 ".map(r => Number(r.dataset.id))")


def test_the_new_views_in_chromium(tmp_path, dead_pid):
    """A sweep of three runs, the view on one of them that died: its state, the table (sort, filter, pages,
    a click opens the program), the genealogy (recoloured, a click opens the program), the sweep's chart,
    cost over time, a run dir made while the page is open, and the same views in report.html."""
    from selenium.webdriver.common.action_chains import ActionChains

    from evolve.storage.rundir import load_config
    from evolve.ui.report import write_report

    sweep = tmp_path / "multirun"
    scores = [1.0] + [None if i % 3 == 0 or i == 29 else 1.0 + i / 10 * (-1) ** i for i in range(1, 30)]
    make_run(sweep / "0_seed=0", "job0", scores)
    make_run(sweep / "1_seed=1", "job1", [1.0, 1.5, None, 2.5])
    make_run(sweep / "2_seed=2", "job2", [1.0, 0.5])
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    lock_file(sweep / "0_seed=0", dead_pid)
    driver = chromium()
    try:
        with serving(sweep) as server:
            base = f"http://127.0.0.1:{server.server_address[1]}/"
            driver.get(base + "?run=0")
            wait_for(driver, "return document.body.dataset.ready === 'yes'")
            state = wait_for(driver, "return document.getElementById('state').textContent")
            assert state.startswith("died: the controller died (pid ") and \
                driver.execute_script("return document.getElementById('state').className") == "died"

            # the table: 30 programs, best first, 50 to a page
            ids = table_ids(driver)
            assert len(ids) == 30 and "page 1 of 1 (30 programs)" in driver.find_element("id", "table-page").text
            best = get(base + "api/campaign?run=0")["best"]["id"]
            assert ids[0] == best
            select(driver, "table-sort", "time")
            wait_for(driver, "return document.querySelector('#programs-table tr.row').dataset.id === '30'")
            select(driver, "table-status", "invalid")
            wait_for(driver, "return document.querySelectorAll('#programs-table tr.row').length === 10")
            select(driver, "table-reason", "invalid: stage evaluate: <b>bold</b><img src=x onerror=alert(N)>")
            wait_for(driver, "return document.querySelectorAll('#programs-table tr.row').length === 3")
            cells = driver.execute_script("return [...document.querySelectorAll('#programs-table td.reason')]"
                                          ".map(t => t.textContent)")
            assert set(cells) == {"invalid: stage evaluate: <b>bold</b><img src=x onerror=alert(N)>"}  # as text
            assert not driver.execute_script("return document.querySelector('#programs-section img, "
                                             "#programs-table b')")
            driver.execute_script("document.querySelector('#programs-table tr.row').scrollIntoView()")
            driver.find_element("css selector", "#programs-table tr.row").click()
            title = wait_for(driver, "const t = document.getElementById('detail-title'); return t && t.textContent")
            assert title.startswith("Program 25: invalid")  # the newest of the three
            select(driver, "table-reason", "")
            select(driver, "table-status", "")
            driver.execute_script("const s = document.getElementById('table-sort'); s.value = 'score';")
            select(driver, "table-order", "asc")
            wait_for(driver, "return document.querySelectorAll('#programs-table tr.row').length === 30")

            # the genealogy: every program, coloured by score, then by island; a click opens a program
            traces = driver.execute_script("return document.getElementById('chart-genealogy').data"
                                           ".map(t => [t.name, (t.customdata || []).length])")
            assert dict(t for t in traces if t[0])["valid"] == 20 and dict(t for t in traces if t[0])["failed"] == 10
            assert "every one of the 30 programs" in driver.find_element("id", "genealogy-note").text
            select(driver, "genealogy-colour", "island")
            wait_for(driver, "return document.getElementById('chart-genealogy').data.some(t => t.name === 'island 1')")
            markers = driver.find_elements("css selector",
                                           "#chart-genealogy .scatterlayer .trace:nth-of-type(3) .point")
            marker = markers[len(markers) // 2]
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", marker)
            ActionChains(driver).move_to_element(marker).pause(0.3).click().perform()
            wait_for(driver, "const t = document.getElementById('detail-title'); "
                             "return t && !t.textContent.startsWith('Program 25:') && t.textContent")

            # the sweep's runs in one chart, and cost over time per model
            assert not driver.execute_script("return document.getElementById('sweep-section').hidden")
            names = driver.execute_script("return document.getElementById('chart-sweep').data.map(t => t.name)")
            assert names == ["0: seed=0 (this run)", "1: seed=1", "2: seed=2"]
            costs = driver.execute_script("return document.getElementById('chart-cost').data"
                                          ".map(t => [t.name, t.y[t.y.length - 1]])")
            assert [c[0] for c in costs] == ["model-a", "model-b"] and costs[0][1] == pytest.approx(0.15)

            # a run dir made while the page is open joins the list of campaigns
            make_run(sweep / "3_seed=3", "job3", [1.0])
            wait_for(driver, "return document.getElementById('runs').options.length === 4", limit=90)
            assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
            driver.execute_script("window.scrollTo(0, 0)")
            shot = tmp_path / "views.png"
            driver.save_screenshot(str(shot))
            print(f"screenshot of the web view: {shot}")

        # report.html: the same views from the embedded data
        run = sweep / "0_seed=0"
        config = load_config(run)
        with open_database(config, run, read_only=True) as db:
            write_report(run, db, config, references=[])
        driver.get((run / "report.html").as_uri())
        wait_for(driver, "return document.body.dataset.ready === 'yes'")
        assert len(table_ids(driver)) == 30 and table_ids(driver)[0] == best
        select(driver, "table-status", "invalid")
        wait_for(driver, "return document.querySelectorAll('#programs-table tr.row').length === 10")
        assert driver.execute_script("return document.getElementById('chart-genealogy').data.length") >= 3
        assert len(driver.execute_script("return document.getElementById('chart-sweep').data")) == 4
        assert driver.execute_script("return document.querySelectorAll('script[src], link[href^=http]').length") == 0
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        driver.save_screenshot(str(tmp_path / "report.png"))
        print(f"screenshot of report.html: {tmp_path / 'report.png'}")
    finally:
        driver.quit()
