"""Faults that must speak, through the real `evolve` command: one controller per run, signals, dead or
dying endpoints, evaluators with bugs, duplicate problems. Real subprocesses, the session's Ray, SQLite
files and the fake OpenAI server; nothing here depends on how fast the machine is."""

from __future__ import annotations

import itertools
import json
import re
import signal
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from evolve.testing import FakeOpenAIServer
from tests.e2e.test_cli import evolve, rows, wait_for_rows

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _steps_edit(request, delta):
    user = request["messages"][1]["content"]
    line = re.search(r"^def refine\(centers, steps=(\d+).*\n", user, re.MULTILINE)
    new = line.group(0).replace(f"steps={line.group(1)}", f"steps={max(10, int(line.group(1)) + delta)}")
    return f"More steps.\n<<<<<<< SEARCH\n{line.group(0)}=======\n{new}>>>>>>> REPLACE\n"


class Gate:
    """A responder that answers `allowed` requests and holds the others until more are allowed."""

    def __init__(self, allowed: int = 0) -> None:
        self.allowed, self.served = allowed, 0
        self._cond = threading.Condition()
        self._edits = itertools.count()

    def allow(self, n: int) -> None:
        with self._cond:
            self.allowed += n
            self._cond.notify_all()

    def __call__(self, request):
        with self._cond:
            self._cond.wait_for(lambda: self.served < self.allowed, timeout=600)
            self.served += 1
        return _steps_edit(request, 20 + 3 * next(self._edits))


def _llm(server) -> list[str]:
    return ["llm=openai", "llm.model=fake-model", f"llm.base_url={server.base_url}", "llm.api_key_env=null",
            "llm.max_retries=0", "llm.concurrency=2"]


def _start(evolve_bin, env, *args):
    return subprocess.Popen([evolve_bin, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("evolve:")]


def _status(evolve_bin, env, run_dir) -> dict:
    """`evolve status --json RUN_DIR`, parsed."""
    out = evolve(evolve_bin, env, "status", "--json", str(run_dir))
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return json.loads(out.stdout)


def _each_once(db: Path, iterations: int) -> None:
    """`iterations` iterations and the initial program, no iteration number twice (an interrupted
    campaign leaves gaps: what was in flight was never committed)."""
    numbers = [r[1] for r in rows(db)]
    assert len(numbers) == iterations + 1 and len(set(numbers)) == len(numbers) and numbers.count(0) == 1, numbers


def test_two_runs_into_one_dir_one_is_refused_naming_the_other(evolve_bin, cli_env, ray_address, tmp_path):
    run_dir, gate = tmp_path / "run", Gate(0)
    with FakeOpenAIServer(gate, model="fake-model") as server:
        args = ["run", *_llm(server), "budget.iterations=6", f"hydra.run.dir={run_dir}", f"ray.address={ray_address}",
                "ray.num_workers=2"]
        procs = [_start(evolve_bin, cli_env, *args) for _ in range(2)]
        try:
            refused = None
            while refused is None:  # the winner waits at the gate, so the loser is the one that ends
                for proc in procs:
                    try:
                        proc.wait(timeout=0.5)
                        refused = proc
                    except subprocess.TimeoutExpired:
                        pass
            winner = procs[1 - procs.index(refused)]
            _, err = refused.communicate()
            assert refused.returncode == 1 and len(_errors(err)) == 1 and "Traceback" not in err, err
            assert f"pid {winner.pid} on host {socket.gethostname()}" in _errors(err)[0]
            assert "is in use by a running campaign" in _errors(err)[0]
            gate.allow(1000)
            _, err = winner.communicate(timeout=300)
            assert winner.returncode == 0, err
        finally:
            gate.allow(1000)
            for proc in procs:
                proc.kill()
    _each_once(run_dir / "programs.db", 6)  # not doubled
    with sqlite3.connect(run_dir / "programs.db") as raw:
        assert raw.execute("select count(*) from run_locks").fetchone()[0] == 0  # released


def test_runs_started_together_get_their_own_dirs(evolve_bin, cli_env, ray_address, tmp_path):
    args = ["run", "budget.iterations=3", f"ray.address={ray_address}", "ray.num_workers=1"]
    procs = [subprocess.Popen([evolve_bin, *args], env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    dirs = sorted((tmp_path / "runs" / "circle_packing").iterdir())
    assert len(dirs) == 2 and all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d{6}", d.name) for d in dirs)
    assert all(len(rows(d / "programs.db")) == 4 for d in dirs)


@pytest.mark.timeout(900)  # several campaigns in a row: room for a loaded machine
def test_resume_of_a_live_campaign_is_refused_and_works_after_a_sigkill(evolve_bin, cli_env, ray_address, tmp_path):
    run_dir, gate = tmp_path / "run", Gate(2)
    db = run_dir / "programs.db"
    with FakeOpenAIServer(gate, model="fake-model") as server:
        proc = _start(evolve_bin, cli_env, "run", *_llm(server), "budget.iterations=8", f"hydra.run.dir={run_dir}",
                      f"ray.address={ray_address}", "ray.num_workers=2")
        try:
            wait_for_rows(db, 3, proc)  # the initial program and two proposals; the rest wait at the gate
            out = evolve(evolve_bin, cli_env, "resume", str(run_dir), "budget.iterations=99",
                         f"ray.address={ray_address}")
            assert out.returncode == 1 and len(_errors(out.stderr)) == 1, out.stderr
            assert f"pid {proc.pid} on host {socket.gethostname()}" in out.stderr
            assert yaml.safe_load((run_dir / "config.yaml").read_text())["budget"]["iterations"] == 8  # untouched
            status = _status(evolve_bin, cli_env, run_dir)
            assert status["state"] == "running" and status["controller"]["pid"] == proc.pid, status
            proc.kill()
            proc.wait(timeout=60)
            status = _status(evolve_bin, cli_env, run_dir)  # no end recorded, a stale lock: it died
            assert status["state"] == "interrupted" and "the controller died" in status["reason"], status
            assert f"pid {proc.pid} on host {socket.gethostname()}" in status["reason"]
            before = rows(db)
            stale = rows(db, "select host, pid from run_locks")
            assert stale == [(socket.gethostname(), proc.pid)]  # left behind by the SIGKILL
            gate.allow(1000)
            out = evolve(evolve_bin, cli_env, "resume", str(run_dir), f"ray.address={ray_address}")
            assert out.returncode == 0, out.stderr
        finally:
            gate.allow(1000)
            proc.kill()
    final = rows(db)
    assert final[: len(before)] == before
    _each_once(db, 8)
    assert rows(db, "select count(*) from run_locks") == [(0,)]


@pytest.mark.timeout(900)  # several campaigns in a row: room for a loaded machine
def test_sigterm_and_sighup_stop_like_ctrl_c_and_resume_finishes(evolve_bin, cli_env, ray_address, tmp_path):
    run_dir, gate = tmp_path / "run", Gate(4)
    db, log = run_dir / "programs.db", run_dir / "campaign.log"
    with FakeOpenAIServer(gate, model="fake-model") as server:
        common = [f"ray.address={ray_address}"]
        proc = _start(evolve_bin, cli_env, "run", *_llm(server), "budget.iterations=20", f"hydra.run.dir={run_dir}",
                      "ray.num_workers=2", *common)
        try:
            wait_for_rows(db, 5, proc)  # four answered proposals; the next ones wait at the gate
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 143, err
            assert f"evolve resume {run_dir}" in err and "interrupted by SIGTERM" in err
            assert "Traceback" not in err and "SIGABRT" not in err and "*** " not in err
            assert "interrupted by SIGTERM" in log.read_text()
            first = rows(db)
            assert len(first) == 5  # nothing in flight was committed, nothing committed was lost
            status = _status(evolve_bin, cli_env, run_dir)
            assert (status["state"], status["reason"]) == ("interrupted", "interrupted by SIGTERM at 4 iterations")
            assert status["iterations"] == {"done": 4, "budget": 20} and status["controller"]["alive"] is False
            text = evolve(evolve_bin, cli_env, "status", str(run_dir)).stdout
            assert re.search(r"state +│ interrupted: interrupted by SIGTERM at 4 iterations \(at ", text), text

            gate.allow(5)  # at least three for the resumed campaign (the killed one left two waiting)
            proc = _start(evolve_bin, cli_env, "resume", str(run_dir), *common)
            wait_for_rows(db, 8, proc)
            proc.send_signal(signal.SIGHUP)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 129 and f"evolve resume {run_dir}" in err, err
            assert "interrupted by SIGHUP" in log.read_text()
            second = rows(db)
            assert second[:5] == first
            assert _status(evolve_bin, cli_env, run_dir)["reason"].startswith("interrupted by SIGHUP at ")

            gate.allow(3)  # two for the requests the stopped campaign left waiting, at least one for the next
            proc = _start(evolve_bin, cli_env, "resume", str(run_dir), *common)
            wait_for_rows(db, len(second) + 1, proc)  # then it waits at the gate
            assert _status(evolve_bin, cli_env, run_dir)["state"] == "running"
            watch = _start(evolve_bin, cli_env, "status", "--watch", "0.5", str(run_dir))
            gate.allow(1000)
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            shown, err = watch.communicate(timeout=120)  # the watch ends when the campaign does
            assert watch.returncode == 0 and "finished: budget.iterations=20 reached" in shown, (shown, err)
        finally:
            gate.allow(1000)
            proc.kill()
    final = rows(db)
    assert final[: len(second)] == second
    _each_once(db, 20)
    status = _status(evolve_bin, cli_env, run_dir)
    assert (status["state"], status["reason"], status["iterations"]["done"]) == \
        ("finished", "budget.iterations=20 reached", 20)


def test_a_dead_endpoint_fails_before_the_start_in_one_line(evolve_bin, cli_env, tmp_path):
    with FakeOpenAIServer() as server:
        url = server.base_url  # closed on exit: connections are refused
    out = evolve(evolve_bin, cli_env, "run", "llm=openai", f"llm.base_url={url}", "llm.api_key_env=null",
                 f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert out.returncode == 1 and _errors(out.stderr) == [
        (f"evolve: llm.base_url={url} does not answer (connection refused); start the server or fix the URL "
         f"(nothing was kept: {tmp_path / 'run'} is removed)")], out.stderr
    assert not (tmp_path / "run").exists()  # no database, no Ray, no evaluation, no run dir


def test_a_model_that_dies_mid_run_is_rested_and_the_campaign_stops(evolve_bin, cli_env, ray_address, tmp_path):
    run_dir, counter = tmp_path / "run", itertools.count()
    db = run_dir / "programs.db"
    with FakeOpenAIServer(lambda r: _steps_edit(r, 20 + 3 * next(counter)), model="fake-model") as server:
        proc = _start(evolve_bin, cli_env, "run", *_llm(server), "budget.iterations=500", f"hydra.run.dir={run_dir}",
                      f"ray.address={ray_address}", "ray.num_workers=2", "llm.rest_after=2", "llm.rest_seconds=0.5",
                      "llm.max_rest_seconds=1", "llm.max_wait_seconds=8", "llm.max_consecutive_failures=100000")
        try:
            wait_for_rows(db, 4, proc)
            server.stop()  # the endpoint dies: connections are refused from now on
            _, err = proc.communicate(timeout=240)
        finally:
            proc.kill()
    assert proc.returncode == 1, err
    assert f"model fake-model at {server.base_url} is failing: APIConnectionError" in err  # as it happens, once
    assert "is resting" not in err  # each rest is in campaign.log
    errors = _errors(err)
    assert errors[-1].startswith("evolve: every model has been resting or failing for 8 s (llm.max_wait_seconds); "
                                 "last errors: fake-model: APIConnectionError"), err
    rests = [float(s) for s in re.findall(r"is resting ([\d.]+) s after", (run_dir / "campaign.log").read_text())]
    assert len(rests) >= 3 and max(rests) == 1.0  # doubled, then capped at llm.max_rest_seconds
    status = evolve(evolve_bin, cli_env, "status", str(run_dir))
    assert status.returncode == 0
    assert re.search(r"model fake-model is failing: its last \d+ calls failed; last error: fake-model: "
                     r"APIConnectionError", status.stdout), status.stdout


def _faulty_env(cli_env):
    return {**cli_env, "PYTHONPATH": str(ROOT)}  # the driver imports tests.e2e.faulty; Ray workers use its cwd


@pytest.mark.timeout(900)  # several campaigns in a row: room for a loaded machine
def test_evaluator_errors_are_their_own_status_and_a_run_of_them_stops(evolve_bin, cli_env, ray_address, tmp_path):
    env, common = _faulty_env(cli_env), [f"ray.address={ray_address}", "ray.num_workers=2"]
    flaky = tmp_path / "flaky"
    out = subprocess.run([evolve_bin, "run", "problem.evaluator=tests.e2e.faulty:Flaky", "budget.iterations=12",
                          "max_evaluator_errors=50", f"hydra.run.dir={flaky}", *common], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    counts = dict(rows(flaky / "programs.db", "select status, count(*) from programs group by status"))
    assert counts.get("evaluator_error", 0) >= 2 and counts.get("valid", 0) >= 2, counts
    assert f"{counts['evaluator_error']} evaluator errors" in out.stdout
    assert len(_errors(out.stderr)) == 1 and "evaluator error at iteration" in out.stderr  # the first one only
    log = (flaky / "campaign.log").read_text()
    assert re.search(r'faulty\.py", line \d+, in evaluate', log) and "KeyError: 'score'" in log
    status = evolve(evolve_bin, cli_env, "status", str(flaky))
    assert f"evaluator_error {counts['evaluator_error']}" in status.stdout and "evaluator errors" in status.stdout
    assert f"evaluator_error {counts['evaluator_error']}" in (flaky / "report.html").read_text()

    broken = tmp_path / "broken"
    out = subprocess.run([evolve_bin, "run", "problem.evaluator=tests.e2e.faulty:Broken", "budget.iterations=40",
                          "max_evaluator_errors=3", f"hydra.run.dir={broken}", *common], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert _errors(out.stderr)[-1].startswith(
        "evolve: stopped after 3 evaluator errors in a row (max_evaluator_errors=3): the evaluator of problem "
        "'circle_packing' raised: evaluator error in stage evaluate: ZeroDivisionError: the reference table is empty")
    assert len(rows(broken / "programs.db")) < 41
    status = _status(evolve_bin, cli_env, broken)
    assert status["state"] == "failed" and status["reason"].startswith("stopped after 3 evaluator errors in a row")
    assert "ZeroDivisionError: the reference table is empty" in status["reason"]
    assert status["evaluator_errors"]["count"] >= 3 and status["failure_reasons"][0]["status"] == "evaluator_error"


def test_an_evaluator_constructor_that_raises_is_one_line(evolve_bin, cli_env, ray_address, tmp_path):
    out = subprocess.run([evolve_bin, "run", "problem.evaluator=tests.e2e.faulty:Exploding", "budget.iterations=3",
                          f"hydra.run.dir={tmp_path}", f"ray.address={ray_address}", "ray.num_workers=1"],
                         env=_faulty_env(cli_env), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert len(_errors(out.stderr)) == 1 and re.fullmatch(
        r"evolve: problem 'circle_packing': its evaluator Exploding\(\) raised RuntimeError: no licence server at "
        r"licence\.example:27000 \(faulty\.py:\d+\); fix the evaluator or its problem\.params \(nothing was kept: "
        r".* is removed\)", _errors(out.stderr)[0]), out.stderr


def test_a_duplicate_problem_name_is_an_error_naming_both_folders(evolve_bin, cli_env, tmp_path):
    plugin = tmp_path / "copied_problem"
    plugin.mkdir()
    builtin = ROOT / "problems" / "circle_packing"
    for name in ("config.yaml", "initial.py", "README.md"):
        (plugin / name).write_text((builtin / name).read_text())  # copied without renaming
    (plugin / "__init__.py").write_text("")
    meta = tmp_path / "copied_problem-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: copied-problem\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text("[evolve.problems]\ncircle_packing = copied_problem\n")
    env = {k: v for k, v in cli_env.items() if k != "EVOLVE_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = str(tmp_path)
    for args in (["problems"], ["run", f"hydra.run.dir={tmp_path / 'run'}"]):
        out = evolve(evolve_bin, env, *args, timeout=120)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.strip() == (f"evolve: two problems are named 'circle_packing': {builtin} and {plugin}; "
                                      "rename one (the `name:` in its config.yaml, or its entry point)")


def test_the_wall_clock_budget_counts_from_the_first_proposal(evolve_bin, cli_env, ray_address, tmp_path):
    # the imports, the evaluation slots and the initial program take well over half a second: counted from
    # the start of the process, this budget would stop the campaign before its first proposal
    out = evolve(evolve_bin, cli_env, "run", "budget.iterations=1000", "budget.wall_seconds=0.5",
                 f"hydra.run.dir={tmp_path}", f"ray.address={ray_address}", "ray.num_workers=1")
    assert out.returncode == 0 and "stop: budget.wall_seconds=0.5 reached" in out.stdout, out.stderr
    assert re.search(r" s \(\+[\d.]+ s set-up\) \| stop", out.stdout)
    assert len(rows(tmp_path / "programs.db")) >= 2  # at least one proposal committed besides the initial program
    assert "the budgets count from now" in (tmp_path / "campaign.log").read_text()
