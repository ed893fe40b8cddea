"""The `evolve` command end to end: real subprocesses on the session's local Ray instance."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e


def evolve(evolve_bin, env, *args, timeout=300):
    return subprocess.run([evolve_bin, *args], capture_output=True, text=True, env=env, timeout=timeout)


def rows(db: Path, query="select id, iteration, status, code_hash from programs order by id"):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(query).fetchall()


def wait_for_rows(db: Path, count: int, proc: subprocess.Popen, limit=180.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if db.exists():
            try:
                if len(rows(db)) >= count:
                    return
            except sqlite3.OperationalError:
                pass  # the schema is being created
        time.sleep(0.2)
    raise AssertionError(f"{db} did not reach {count} rows")


def test_problems_lists_the_builtins(evolve_bin, cli_env):
    out = evolve(evolve_bin, cli_env, "problems")
    assert out.returncode == 0 and "circle_packing" in out.stdout and "2.635" in out.stdout


def one_line(out) -> str:
    """The one line a failed command printed (and nothing else on stderr)."""
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and out.stderr.startswith("evolve: "), out.stderr
    return out.stderr.strip()


def test_unknown_problem_lists_the_available_ones_and_the_folder_form(evolve_bin, cli_env, tmp_path):
    for verb in ("run", "check"):
        line = one_line(evolve(evolve_bin, cli_env, verb, "problem=tsp", f"hydra.run.dir={tmp_path / 'run'}"))
        assert "unknown problem 'tsp'" in line and "circle_packing" in line and "warehouse_tsp" in line
        assert "problem=./path/to/folder" in line
    assert not (tmp_path / "run").exists()


def test_bad_override_names_the_closest_key_or_the_expected_type(evolve_bin, cli_env, tmp_path):
    line = one_line(evolve(evolve_bin, cli_env, "run", "budget.iteratons=3", f"hydra.run.dir={tmp_path / 'run'}"))
    assert line.startswith("evolve: budget.iteratons=3: no such key; did you mean budget.iterations?")
    line = one_line(evolve(evolve_bin, cli_env, "run", "budget.iterations=many"))
    assert line == "evolve: budget.iterations='many': expected an integer (the default is 100)"
    line = one_line(evolve(evolve_bin, cli_env, "run", "-m", "seed=0,1,x", f"hydra.sweep.dir={tmp_path / 'sweep'}"))
    assert line == "evolve: seed='x': expected an integer (the default is 0)"
    line = one_line(evolve(evolve_bin, cli_env, "run", "llm=opnai"))
    assert "did you mean llm=openai?" in line and "offline" in line
    line = one_line(evolve(evolve_bin, cli_env, "check", "sandbox.network_isolation=maybe"))
    assert line == "evolve: sandbox.network_isolation='maybe': expected true or false (the default is true)"
    line = one_line(evolve(evolve_bin, cli_env, "resume", str(tmp_path / "run"), "budget.iteratons=3"))
    assert "did you mean budget.iterations?" in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


def test_cfg_job_prints_the_composed_config(evolve_bin, cli_env):
    out = evolve(evolve_bin, cli_env, "run", "--cfg", "job", "llm.temperature=0.2")
    config = yaml.safe_load(out.stdout)
    assert out.returncode == 0 and config["problem"]["name"] == "circle_packing"
    assert config["llm"]["temperature"] == 0.2 and config["sandbox"]["kind"] == "process"
    assert set(config) >= {"problem", "llm", "sandbox", "database", "ray", "budget"}


def test_verbs_on_a_missing_run_dir_fail_in_one_line(evolve_bin, cli_env, tmp_path):
    for verb in ("status", "best", "resume"):
        out = evolve(evolve_bin, cli_env, verb, str(tmp_path / "nothing"))
        assert out.returncode == 1 and out.stderr.strip().count("\n") == 0 and "not an evolve run dir" in out.stderr


def test_broken_initial_program_is_one_line(evolve_bin, cli_env, ray_address, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def solve(n):\n    raise RuntimeError('no packing today')\n")
    out = evolve(evolve_bin, cli_env, "run", f"problem.initial={broken}", f"hydra.run.dir={tmp_path / 'run'}",
                 f"ray.address={ray_address}", "budget.iterations=5")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("evolve:")]
    assert len(errors) == 1 and "initial program of problem 'circle_packing' is invalid" in errors[0]
    assert "RuntimeError: no packing today" in errors[0]
    assert errors[0].endswith(f"(nothing was kept: {tmp_path / 'run'} is removed)")
    assert not (tmp_path / "run").exists()  # a failed start leaves no run dir behind for `evolve ui runs`


def test_multirun_sweeps_seeds(evolve_bin, cli_env, ray_address, tmp_path):
    out = evolve(evolve_bin, cli_env, "run", "-m", "seed=1,2", "budget.iterations=3", f"ray.address={ray_address}",
                 f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    runs = sorted(p.parent for p in tmp_path.glob("*/programs.db"))
    assert [r.name for r in runs] == ["0_budget.iterations=3,seed=1", "1_budget.iterations=3,seed=2"]
    for run in runs:
        assert len(rows(run / "programs.db")) == 4 and (run / "best.py").exists()


def test_campaign_improves_survives_ctrl_c_and_a_crash_and_resumes(evolve_bin, cli_env, ray_address, tmp_path):
    run_dir = tmp_path / "run"
    db = run_dir / "programs.db"
    args = ["problem=circle_packing", "budget.iterations=60", "seed=5", f"hydra.run.dir={run_dir}",
            f"ray.address={ray_address}"]

    # 1. Ctrl-C part way: exit 130, a hint to resume, nothing lost
    proc = subprocess.Popen([evolve_bin, "run", *args], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_rows(db, 12, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and f"evolve resume {run_dir}" in err
    first = rows(db)
    assert 12 <= len(first) < 61
    report = (run_dir / "report.html").read_text()  # written at the stop, Ctrl-C included
    assert f'"iterations": {len(first) - 1}, "budget": 60' in report

    # 2. resume, then crash hard (SIGKILL) part way
    proc = subprocess.Popen([evolve_bin, "resume", str(run_dir), f"ray.address={ray_address}"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(db, len(first) + 10, proc)
    proc.kill()
    proc.wait(timeout=30)
    second = rows(db)
    assert second[: len(first)] == first and len(second) < 61

    # 3. resume to the end of the budget
    out = evolve(evolve_bin, cli_env, "resume", str(run_dir), f"ray.address={ray_address}")
    assert out.returncode == 0, out.stderr
    final = rows(db)
    assert final[: len(second)] == second
    assert len(final) == 61 and sum(1 for r in final if r[1] == 0) == 1  # 60 iterations + one initial program
    evaluated = [r[3] for r in final if r[2] in ("valid", "invalid")]
    assert len(evaluated) == len(set(evaluated)), "a program was evaluated twice"
    assert len({r[1] for r in final}) == 61  # every iteration number is used once
    assert rows(db, "select upto from tallies") == [(final[-1][0],)]  # the status figures' tally, kept at the stop

    # the outputs and what the other verbs report
    best_score, best_code = rows(db, "select score, code from programs where status='valid' "
                                     "order by score desc limit 1")[0]
    initial_score = rows(db, "select score from programs where iteration=0")[0][0]
    assert best_score > initial_score
    assert (run_dir / "best.py").read_text() == best_code
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["budget"]["iterations"] == 60
    log = (run_dir / "campaign.log").read_text()
    assert "initial program scored" in log and "campaign stopped: budget.iterations=60 reached" in log
    assert "initial" in out.stdout and f"{best_score:.6g}" in out.stdout

    status = evolve(evolve_bin, cli_env, "status", str(run_dir))
    assert status.returncode == 0 and "60 of 60" in status.stdout and f"{best_score:.6g}" in status.stdout
    best = evolve(evolve_bin, cli_env, "best", str(run_dir), "--code")
    assert best.returncode == 0 and best.stdout == best_code
    (run_dir / "report.html").unlink()
    report = evolve(evolve_bin, cli_env, "report", str(run_dir))
    assert report.returncode == 0 and f"{best_score:.6g}" in (run_dir / "report.html").read_text()

    # a finished campaign can be extended
    more = evolve(evolve_bin, cli_env, "resume", str(run_dir), f"ray.address={ray_address}", "budget.iterations=65")
    assert more.returncode == 0 and len(rows(db)) == 66


def test_resuming_a_finished_campaign_says_which_budget_it_reached_and_how_to_go_on(evolve_bin, cli_env, tmp_path):
    run_dir, db = tmp_path / "run", tmp_path / "run" / "programs.db"
    first = evolve(evolve_bin, cli_env, "run", "problem=circle_packing", "budget.iterations=2",
                   f"hydra.run.dir={run_dir}", "progress=off")
    assert first.returncode == 0 and "nothing left to run" not in first.stdout, first.stderr
    done = rows(db)
    again = evolve(evolve_bin, cli_env, "resume", str(run_dir))
    assert again.returncode == 0 and rows(db) == done, again.stderr
    assert "nothing left to run: budget.iterations=2 reached already" in again.stdout
    assert f"`evolve resume {run_dir} budget.iterations=4`" in again.stdout
    more = evolve(evolve_bin, cli_env, "resume", str(run_dir), "budget.iterations=3")
    assert more.returncode == 0 and len(rows(db)) == len(done) + 1 and "nothing left" not in more.stdout, more.stderr


def test_a_missing_api_key_fails_in_one_line_before_anything_starts(evolve_bin, cli_env, tmp_path):
    env = {k: v for k, v in cli_env.items() if k != "OPENAI_API_KEY"}
    out = evolve(evolve_bin, env, "run", "llm=ensemble", f"hydra.run.dir={tmp_path / 'run'}")
    errors = [line for line in out.stderr.splitlines() if line.startswith("evolve:")]
    assert out.returncode == 1 and len(errors) == 1
    assert "OPENAI_API_KEY is not set" in errors[0] and "model cheap" in errors[0]
    assert not (tmp_path / "run" / "programs.db").exists()  # no database, no Ray, no evaluation


def test_a_campaign_on_the_docker_backend(evolve_bin, cli_env, ray_address, tmp_path):
    from tests.sandbox.docker_engine import docker_sandbox

    docker_sandbox().close()  # an engine and the image are there (or the test says why not)
    out = evolve(evolve_bin, cli_env, "run", "sandbox=docker", "budget.iterations=6", "ray.num_workers=2",
                 f"hydra.run.dir={tmp_path}", f"ray.address={ray_address}")
    assert out.returncode == 0, out.stderr
    assert len(rows(tmp_path / "programs.db")) == 7
    log = (tmp_path / "campaign.log").read_text()
    assert "sandbox layer network: isolated: new empty network namespace" in log  # each session's own
    assert "sandbox layer container: --network none;" in log


def test_a_bad_problem_param_is_one_line(evolve_bin, cli_env, ray_address, tmp_path):
    out = evolve(evolve_bin, cli_env, "run", "problem=warehouse_tsp", "problem.params.layout=triple",
                 f"hydra.run.dir={tmp_path}", f"ray.address={ray_address}", "budget.iterations=2")
    errors = [line for line in out.stderr.splitlines() if line.startswith("evolve:")]
    assert out.returncode == 1 and len(errors) == 1 and "Traceback" not in out.stderr
    assert re.search(r"problem 'warehouse_tsp': its evaluator WarehouseRouting\(\) raised ValueError: "
                     r"layout='triple'.*\(instances\.py:\d+\)", errors[0]), errors[0]


def test_an_evaluator_raising_in_init_is_one_line_with_its_line_and_leaves_no_run_dir(evolve_bin, cli_env, tmp_path):
    from evolve.cli.scaffold import new_problem
    from evolve.errors import RunDirError
    from evolve.ui.server import find_runs

    folder = new_problem("raises_at_start", tmp_path)
    source = (folder / "evaluator.py").read_text()
    (folder / "evaluator.py").write_text(source.replace(
        "        self.call_timeout = call_timeout\n",
        "        self.call_timeout = call_timeout\n        raise ValueError('the data folder is empty')\n"))
    line = next(n for n, text in enumerate((folder / "evaluator.py").read_text().splitlines(), 1) if "empty" in text)
    run_dir = tmp_path / "runs" / "first"
    out = evolve(evolve_bin, cli_env, "run", f"problem={folder}", f"hydra.run.dir={run_dir}", "budget.iterations=2")
    errors = [text for text in out.stderr.splitlines() if text.startswith("evolve:")]
    assert out.returncode == 1 and errors == [(
        f"evolve: problem 'raises_at_start': its evaluator Approximation() raised ValueError: the data folder is "
        f"empty (evaluator.py:{line}); fix the evaluator or its problem.params (nothing was kept: {run_dir} is "
        "removed)")], out.stderr
    assert not run_dir.exists()
    with pytest.raises(RunDirError, match="holds no evolve run dir"):  # nothing for `evolve ui runs` to list
        find_runs(tmp_path / "runs")


def test_without_a_terminal_the_run_dir_comes_first_then_progress_lines(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    out = evolve(evolve_bin, cli_env, "run", "budget.iterations=4", "progress_interval=0", f"hydra.run.dir={run_dir}")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == f"run dir: {run_dir}  (from another terminal: evolve status --watch {run_dir})", lines
    progress = [line for line in lines if line.startswith("iteration ")]
    assert 1 <= len(progress) <= 4 and progress[-1].startswith("iteration 4/4 | "), lines  # one per loop turn
    assert all(" | best " in line and " evals/s | " in line for line in progress)
    quiet = evolve(evolve_bin, cli_env, "run", "budget.iterations=2", "progress_interval=3600",
                   f"hydra.run.dir={tmp_path / 'quiet'}")
    assert quiet.returncode == 0 and quiet.stderr.splitlines() == [
        f"run dir: {tmp_path / 'quiet'}  (from another terminal: evolve status --watch {tmp_path / 'quiet'})"]


def test_a_failure_after_the_start_names_the_run_dir_and_the_resume(evolve_bin, cli_env, tmp_path):
    from evolve.testing.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        url = server.base_url  # closed on exit: connections are refused
    run_dir = tmp_path / "run"
    out = evolve(evolve_bin, cli_env, "run", "llm=openai", f"llm.base_url={url}", "llm.api_key_env=null",
                 "llm.probe_timeout=null", "llm.max_retries=0", "llm.max_consecutive_failures=2",
                 "budget.iterations=5", f"hydra.run.dir={run_dir}")
    errors = [text for text in out.stderr.splitlines() if text.startswith("evolve:")]
    assert out.returncode == 1, out.stderr
    assert errors[-1].startswith("evolve: stopped after 2 failed proposals in a row"), out.stderr
    assert errors[-1].endswith(f"every finished program is kept in {run_dir}: once fixed, continue with "
                               f"`evolve resume {run_dir}`"), errors[-1]
    assert rows(run_dir / "programs.db", "select iteration, status from programs where iteration = 0") == \
        [(0, "valid")]
    status = evolve(evolve_bin, cli_env, "status", "--json", str(run_dir))
    assert json.loads(status.stdout)["state"] == "failed"
