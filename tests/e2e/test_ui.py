"""`evolve ui` and report.html on a real campaign: the JSON endpoints against the database, and the page in
a real headless Chromium (Debian's chromium and chromium-driver, installed by scripts/chromium.sh)."""

from __future__ import annotations

import bisect
import contextlib
import difflib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import pytest
import yaml

import evolve
from evolve.population.grid import quantile_edges
from evolve.ui.server import make_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run_dir(ray_address, tmp_path_factory) -> Path:
    """A finished circle_packing campaign: 30 iterations of the offline mutator on two islands."""
    folder = tmp_path_factory.mktemp("ui") / "run"
    run = evolve.run("circle_packing", ["budget.iterations=30", "ray.num_workers=1", "progress=off",
                                        "database.islands=2"], run_dir=folder)
    run.close()
    return folder


def query(run_dir: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(f"file:{run_dir / 'programs.db'}?mode=ro&immutable=1", uri=True) as conn:  # the run is over
        return conn.execute(sql, args).fetchall()


def fingerprint(run_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.iterdir())
            if p.is_file() and p.name.startswith("programs.db")}


@pytest.fixture
def ui(run_dir):
    """`evolve ui RUN_DIR` in this process on a free port; yields its URL."""
    server = make_server(run_dir, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def get(url: str):
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        return json.loads(body) if response.headers["Content-Type"] == "application/json" else body


def test_the_endpoints_agree_with_the_database_and_write_nothing(run_dir, ui):
    before = fingerprint(run_dir)
    [run] = get(ui + "api/campaigns")
    deadline = time.monotonic() + 120
    while not (data := get(ui + "api/campaign?run=0"))["references"] and time.monotonic() < deadline:
        time.sleep(0.2)  # the reference lines come once the evaluator is built, apart from the first answer
    iterations = query(run_dir, "select count(*) from programs where iteration > 0")[0][0]
    assert data["iterations"] == iterations and run["name"] == data["name"] and run["problem"] == "circle_packing"
    counts = dict(query(run_dir, "select status, count(*) from programs group by status"))
    assert data["counts"] == counts
    valid = query(run_dir, "select id, score, island from programs where status='valid' order by id")
    assert data["scores"]["id"] == [r[0] for r in valid] and data["scores"]["score"] == [r[1] for r in valid]
    evaluated = sum(counts.get(k, 0) for k in ("valid", "invalid", "evaluator_error"))
    assert data["evaluated"] == evaluated and data["scores"]["evaluation"][-1] <= evaluated
    best = max(valid, key=lambda r: r[1])
    assert data["best"]["id"] == best[0] and data["steps"]["all"]["score"][-1] == best[1]
    islands = yaml.safe_load((run_dir / "config.yaml").read_text())["database"]["islands"]
    for island in range(islands):  # each island's best step is the best of the programs born there (and the initial)
        born = [r[1] for r in valid if r[2] == island] + [valid[0][1]]
        assert data["steps"][str(island)]["score"][-1] == max(born)
    assert [r["name"] for r in data["references"]] == ["best known (2.635)"]
    assert len(data["maps"]) == islands and all(m["filled"] >= 1 for m in data["maps"])
    features = {pid: (json.loads(f)["radius_spread"], len(code)) for pid, f, code in
                query(run_dir, "select id, features, code from programs where status='valid' order by id")}
    # circle_packing's bins are adaptive: quantiles of the values of the first 2^k valid programs (6 bins each)
    first = list(features.values())[:2 ** (len(features).bit_length() - 1)]
    edges = [quantile_edges([v[k] for v in first], 6) for k in range(2)]
    for m in data["maps"]:  # every elite sits in the cell of its own features
        assert [m["x"]["name"], m["y"]["name"]] == ["radius_spread", "code_length"]
        for j, row in enumerate(m["ids"]):
            for i, pid in enumerate(row):
                if pid is not None:
                    assert (i, j) == tuple(bisect.bisect_right(edges[k], features[pid][k]) for k in range(2))
    nodes = {n["id"]: n for n in data["lineage"]["nodes"]}
    assert best[0] in nodes and nodes[best[0]]["best"]
    parents = dict(query(run_dir, "select id, parent_id from programs"))
    assert all(n["parent"] == parents[pid] for pid, n in nodes.items() if n["parent"] is not None)
    [spend] = data["spend"]
    calls = query(run_dir, "select model, count(*) from llm_calls group by model")
    assert (spend["model"], spend["calls"]) == calls[0]

    child = next(pid for pid, n in nodes.items() if n["parent"] is not None)
    detail = get(ui + f"api/program?run=0&id={child}")
    code, parent_id, iteration, feedback = query(run_dir, "select code, parent_id, iteration, feedback from programs "
                                                          "where id=?", child)[0]
    parent_code = query(run_dir, "select code from programs where id=?", parent_id)[0][0]
    assert detail["code"] == code and detail["feedback"] == feedback and detail["parent"] == parent_id
    assert detail["diff"] == "\n".join(difflib.unified_diff(parent_code.splitlines(), code.splitlines(),
                                                            f"program {parent_id}", f"program {child}", lineterm=""))
    packed, response = query(run_dir, "select m.data, c.response from llm_calls c join llm_messages m on "
                                      "m.call_id = c.id where c.iteration=? order by c.id desc limit 1", iteration)[0]
    assert detail["prompt"] == json.loads(zlib.decompress(packed)) and detail["reply"] == response
    assert fingerprint(run_dir) == before  # read-only: not a byte of the database changed


def test_bad_requests_are_one_line_each(ui):
    for path, expected in (("api/program?run=0&id=x", "id=N: a program's id is required"),
                           ("api/campaign?run=7", "run=7: no such run"), ("api/program?run=0&id=999999", "no program")):
        with pytest.raises(urllib.error.HTTPError) as info:
            get(ui + path)
        assert expected in json.loads(info.value.read())["error"]


def chromium(*arguments: str):
    """A headless Chromium driven by Selenium through Debian's chromedriver (its path given, so Selenium
    Manager never runs and nothing is downloaded), with any further `arguments`; skipped without it, failed
    in CI."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        reason = "Debian's chromium and chromium-driver are not installed (run bash scripts/chromium.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,3200", *arguments):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def wait_for(driver, script: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"the page never satisfied: {script}")


def points(driver, chart: str) -> dict[str, int]:
    return driver.execute_script(f"return Object.fromEntries(document.getElementById('{chart}').data"
                                 ".map(t => [t.name || t.type, (t.x || t.z).length]))")


def test_the_page_in_chromium_shows_the_campaign_and_a_clicked_programs_diff(run_dir, ui, tmp_path):
    valid = query(run_dir, "select count(*) from programs where status='valid'")[0][0]
    driver = chromium()
    try:
        driver.get(ui)
        wait_for(driver, "return document.body.dataset.ready === 'yes'")
        assert points(driver, "chart-scores")["valid programs"] == valid
        assert points(driver, "chart-time")["valid programs"] == valid
        # points beyond the focused view are counted in words, never drawn on the axis
        scores = [r[0] for r in query(run_dir, "select score from programs where status='valid'")]
        low, high = driver.execute_script("return document.getElementById('chart-scores')._fullLayout.yaxis.range")
        outside = sum(not low <= s <= high for s in scores)
        text = driver.execute_script("return document.querySelector('.offview').textContent")
        assert text.startswith(f"{outside} of {valid} valid programs lie below" if outside else "every one of")
        assert driver.execute_script("return document.querySelectorAll('#maps .main-svg').length") >= 2
        # a lineage node with a parent: click its marker as a user would
        nodes = driver.execute_script("return document.getElementById('chart-lineage').data[1].customdata")
        parents = dict(query(run_dir, "select id, parent_id from programs"))
        index = next(i for i, pid in enumerate(nodes) if parents[pid] is not None)
        from selenium.webdriver.common.action_chains import ActionChains

        markers = driver.find_elements("css selector", "#chart-lineage .scatterlayer .trace:nth-of-type(2) .point")
        marker = markers[index]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", marker)
        ActionChains(driver).move_to_element(marker).pause(0.3).click().perform()
        title = wait_for(driver, "const t = document.getElementById('detail-title'); return t && t.textContent")
        assert title.startswith(f"Program {nodes[index]}:")
        diff = driver.execute_script("return document.querySelector('#detail pre.diff').textContent")
        code, parent = query(run_dir, "select code, parent_id from programs where id=?", nodes[index])[0]
        parent_code = query(run_dir, "select code from programs where id=?", parent)[0][0]
        expected = difflib.unified_diff(parent_code.splitlines(), code.splitlines(), lineterm="")
        changed = [line for line in expected if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        assert changed and all(line in diff for line in changed)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        shot = tmp_path / "evolve-ui.png"
        driver.save_screenshot(str(shot))
        print(f"screenshot of the web view: {shot}")
        assert shot.stat().st_size > 10_000

        # report.html: the same views from the embedded data, with no server at all
        driver.get((run_dir / "report.html").as_uri())
        wait_for(driver, "return document.body.dataset.ready === 'yes'")
        assert points(driver, "chart-scores")["valid programs"] == valid
        assert driver.execute_script("return document.querySelectorAll('script[src], link[href^=http]').length") == 0
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        driver.save_screenshot(str(tmp_path / "report.png"))
        print(f"screenshot of report.html: {tmp_path / 'report.png'}")
    finally:
        driver.quit()


def test_ui_imports_neither_ray_nor_openai(run_dir):
    script = ("import sys; from evolve.ui.server import make_server; s = make_server(sys.argv[1], port=0); "
              "s.sources[0].data(wait_references=60); s.sources[0].program(1); s.server_close(); "
              "print(sorted(m for m in ('ray', 'openai') if m in sys.modules))")
    out = subprocess.run([os.sys.executable, "-c", script, str(run_dir)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_page_follows_a_running_campaign(tmp_path):
    """Rows committed while the page is open appear in its charts without a reload (the page polls)."""
    from evolve.config import Config, DatabaseConfig
    from evolve.problems import get_problem
    from evolve.program import ProgramStatus
    from evolve.storage.rundir import open_database, write_config

    config = Config(problem=get_problem("circle_packing"), name="live", database=DatabaseConfig(islands=2))
    write_config(config, tmp_path)
    code = "def solve(n):\n    return []  # {}\n"
    with open_database(config, tmp_path) as db:  # the campaign's writer, as the controller holds it
        first = db.add(iteration=0, status=ProgramStatus.VALID, code=code.format(0), code_hash="h0", score=1.0,
                       features={"radius_spread": 0.1})
        server = make_server(tmp_path, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        driver = chromium()
        try:
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
            wait_for(driver, "return document.body.dataset.ready === 'yes'")
            assert points(driver, "chart-scores")["valid programs"] == 1
            for i in range(1, 6):
                db.add(iteration=i, status=ProgramStatus.VALID, code=code.format(i), code_hash=f"h{i}", score=1.0 + i,
                       features={"radius_spread": 0.1 * i}, parent=first, island=i % 2)
            wait_for(driver, "const d = document.getElementById('chart-scores').data; "
                             "return d && d[0].x.length === 6")
            summary = driver.execute_script("return document.getElementById('summary').textContent")
            assert "5 of 100 iterations" in summary and "best 6 (program 6" in summary
            assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        finally:
            driver.quit()
            server.shutdown()
            server.server_close()


def test_a_campaign_resumed_under_an_open_view_is_followed(tmp_path):
    """A finished run is read as an immutable file; once a campaign resumes in it, the view reads anew."""
    from evolve.config import Config
    from evolve.problems import get_problem
    from evolve.program import ProgramStatus
    from evolve.storage.rundir import open_database, write_config

    config = Config(problem=get_problem("circle_packing"), name="resumed")
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        first = db.add(iteration=0, status=ProgramStatus.VALID, code="a = 0\n", code_hash="h0", score=1.0)
    assert not (tmp_path / "programs.db-wal").exists()
    server = make_server(tmp_path, port=0)
    try:
        source = server.sources[0]
        assert source.data()["iterations"] == 0
        with open_database(config, tmp_path) as db:  # the campaign resumes
            db.add(iteration=1, status=ProgramStatus.VALID, code="a = 1\n", code_hash="h1", score=2.0, parent=first)
            data = source.data()
            assert data["iterations"] == 1 and data["best"]["score"] == 2.0
    finally:
        server.server_close()


def test_the_command_prints_its_url_and_bad_input_is_one_line(run_dir, evolve_bin, cli_env, tmp_path):
    proc = subprocess.Popen([evolve_bin, "ui", str(run_dir), "--port", "0"], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("evolve ui: http://127.0.0.1:") and "(1 run dir under" in line, line
        url = line.split()[2]
        assert get(url + "api/campaigns")[0]["run_dir"] == str(run_dir)
        port = url.rsplit(":", 1)[1].strip("/")
        taken = subprocess.run([evolve_bin, "ui", str(run_dir), "--port", port], env=cli_env, capture_output=True,
                               text=True, timeout=120, check=False)
        assert taken.returncode == 1 and taken.stderr.strip().count("\n") == 0
        assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr and "--port" in taken.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    missing = subprocess.run([evolve_bin, "ui", str(tmp_path / "nothing")], env=cli_env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
    empty = subprocess.run([evolve_bin, "ui", str(tmp_path)], env=cli_env, capture_output=True, text=True, timeout=120,
                           check=False)
    assert empty.returncode == 1 and "holds no evolve run dir" in empty.stderr


def test_a_campaign_in_postgresql_is_served_read_only(postgres_url, tmp_path):
    from evolve.config import Config
    from evolve.problems import get_problem
    from evolve.program import ProgramStatus
    from evolve.storage.rundir import open_database, write_config

    config = Config(problem=get_problem("circle_packing"), name="in-postgres")
    config.database.url = postgres_url
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        first = db.add(iteration=0, status=ProgramStatus.VALID, code="a = 0\n", code_hash="h0", score=1.0)
        db.add(iteration=1, status=ProgramStatus.INVALID, code="a = 1\n", code_hash="h1", parent=first, error="bad")
        server = make_server(tmp_path, port=0)
        try:
            data = server.sources[0].data()
            assert data["counts"] == {"valid": 1, "invalid": 1} and data["scores"]["score"] == [1.0]
            db.add(iteration=2, status=ProgramStatus.VALID, code="a = 2\n", code_hash="h2", score=3.0, parent=first)
            deadline = time.monotonic() + 60  # the view recomputes at most every 10x its last computation
            while server.sources[0].data()["best"]["score"] != 3.0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert server.sources[0].data()["best"]["score"] == 3.0  # a live campaign's new rows
            assert server.sources[0].program(first.id)["code"] == "a = 0\n"
        finally:
            server.server_close()


# -- only for its owner: the Host header, and a token off loopback -------------------------------------------
@pytest.fixture
def small_run(tmp_path) -> Path:
    """A run dir of two programs, written by hand (no campaign): the failed one's reason holds HTML."""
    from evolve.config import Config
    from evolve.problems import get_problem
    from evolve.program import ProgramStatus
    from evolve.storage.rundir import open_database, write_config

    config = Config(problem=get_problem("circle_packing"), name="small")
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        first = db.add(iteration=0, status=ProgramStatus.VALID, code="a = 0\n", code_hash="h0", score=1.0,
                       features={"radius_spread": 0.1})
        db.add(iteration=1, status=ProgramStatus.INVALID, code="a = 1\n", code_hash="h1", parent=first,
               error="stage evaluate: <b>bold</b><img src=x onerror=alert(1)>", feedback="<b>bold</b>")
    return tmp_path


@contextlib.contextmanager
def serving(run_dir: Path, **options):
    server = make_server(run_dir, port=0, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def answer(url: str, **headers) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_foreign_host_header_is_refused(small_run):
    """DNS rebinding: a page elsewhere makes the browser ask evil.example, which resolves to 127.0.0.1."""
    with serving(small_run) as server:
        port = server.server_address[1]
        base = f"http://127.0.0.1:{port}/"
        for path in ("", "static/app.js", "api/campaigns", "api/campaign?run=0", "api/program?run=0&id=2"):
            status, _, body = answer(base + path, Host=f"evil.example:{port}")
            assert status == 403 and "not an address this view serves" in json.loads(body)["error"], path
            assert b"a = 1" not in body and b"bold" not in body
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"LOCALHOST:{port + 1}"):
            assert answer(base + "api/program?run=0&id=2", Host=host)[0] == 200, host
        assert server.url == base  # loopback: no token


def test_off_loopback_every_request_needs_the_token(small_run):
    with serving(small_run, host="0.0.0.0") as server:
        port, token = server.server_address[1], server.access.token
        assert len(token) >= 32 and server.url.endswith(f":{port}/?token={token}")
        base = f"http://127.0.0.1:{port}/"
        for path in ("", "api/campaigns", "api/program?run=0&id=2"):
            for query in ("", "?token=wrong" if "?" not in path else "&token=wrong"):
                status, headers, body = answer(base + path + query)
                assert status == 401 and "needs its token" in json.loads(body)["error"], path + query
                assert "Set-Cookie" not in headers and b"a = 1" not in body
        status, headers, body = answer(f"{base}?token={token}")
        assert status == 200 and b"<!doctype html>" in body
        cookie = headers["Set-Cookie"]
        assert cookie.startswith(f"evolve_ui_{port}={token};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        status, _, body = answer(base + "api/program?run=0&id=2", Cookie=f"other=1; evolve_ui_{port}={token}")
        assert status == 200 and json.loads(body)["code"] == "a = 1\n"
        assert answer(base + "api/campaigns", Cookie=f"evolve_ui_{port}={token}x")[0] == 401
        assert answer(base + "api/campaigns", Cookie=f"evolve_ui_{port + 1}={token}")[0] == 401  # another view's
        # the token does not make a foreign Host acceptable
        assert answer(base + "api/campaigns", Host="evil.example", Cookie=f"evolve_ui_{port}={token}")[0] == 403


def test_a_bind_off_loopback_without_a_token_is_refused_in_one_line(small_run, evolve_bin, cli_env):
    from evolve.errors import ConfigError

    with pytest.raises(ConfigError, match="every interface: it needs a token"):
        make_server(small_run, host="0.0.0.0", port=0, token="")
    refused = subprocess.run([evolve_bin, "ui", str(small_run), "--host", "0.0.0.0", "--no-token", "--port", "0"],
                             env=cli_env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "evolve ui --host 0.0.0.0 serves every interface: it needs a token" in refused.stderr
    proc = subprocess.Popen([evolve_bin, "ui", str(small_run), "--host", "0.0.0.0", "--port", "0"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[2]
        port, token = url.split(":")[2].split("/")[0], url.split("?token=")[1]
        assert len(token) >= 32
        assert answer(f"http://127.0.0.1:{port}/api/campaigns")[0] == 401
        assert answer(f"http://127.0.0.1:{port}/api/campaigns?token={token}")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chromium_refuses_a_rebound_name_and_keeps_the_token_as_a_cookie(small_run):
    """A real browser: a name of an attacker's resolving to 127.0.0.1 gets nothing; the printed URL with
    its token opens the page, whose own requests then carry the cookie; chart labels show the failure's
    HTML as text."""
    driver = chromium("--host-resolver-rules=MAP evil.example 127.0.0.1")
    try:
        with serving(small_run, token="owner-token-0123456789") as server:
            port = server.server_address[1]
            driver.get(f"http://evil.example:{port}/api/program?run=0&id=2")
            text = driver.execute_script("return document.body.textContent")
            assert "not an address this view serves" in text and "a = 1" not in text
            driver.get(f"http://127.0.0.1:{port}/")
            assert "needs its token" in driver.execute_script("return document.body.textContent")
            driver.get(server.url)
            wait_for(driver, "return document.body.dataset.ready === 'yes'")
            assert "token" not in driver.current_url  # kept as a cookie, out of the address bar
            assert points(driver, "chart-scores")["valid programs"] == 1
            labels = driver.execute_script("return [...document.querySelectorAll('#chart-failures .ytick text')]"
                                           ".map(t => t.textContent)")
            assert labels == ["invalid: stage evaluate: <b>bold</b><img src=x onerror=alert(N)>"], labels
            assert not driver.execute_script("return document.querySelector('#chart-failures img, "
                                             "#chart-failures text b, #chart-failures tspan[style*=bold]')")
            driver.get(f"http://127.0.0.1:{port}/api/campaigns")  # the cookie alone, no token in the URL
            assert json.loads(driver.execute_script("return document.body.textContent"))[0]["name"] == "small"
    finally:
        driver.quit()
