"""A campaign on a private local Ray instance: scored locally while Ray starts, then on Ray's workers,
and nothing it started outlives the command."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

import psutil
import pytest

pytestmark = pytest.mark.e2e


def _wait_for(path, text: str, proc: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"evolve exited ({proc.returncode}) before {text!r}: {proc.stderr.read()}")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_ray_starts_behind_the_campaign_and_nothing_outlives_the_command(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([evolve_bin, "run", "problem=circle_packing", "budget.iterations=100000",
                             f"hydra.run.dir={run_dir}", "progress=off", "ray.num_cpus=2"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = run_dir / "campaign.log"
    try:
        _wait_for(log, "initial program scored", proc)  # scored in this process's local slot: Ray need not be up
        _wait_for(log, "evaluations move to them", proc)
        started = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(_name(p) for p in started)
        assert "raylet" in names and "gcs_server" in names, names  # the private instance is the command's own
        with sqlite3.connect(run_dir / "programs.db") as db:
            before = db.execute("SELECT count(*) FROM programs").fetchone()[0]
        _wait_for_more(run_dir, before + 10, proc)  # children scored on Ray's workers after the hand-over
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err
    finally:
        proc.kill()
    _, alive = psutil.wait_procs(started, timeout=10)
    assert alive == [], f"left running: {[(p.pid, p.name()) for p in alive]}"
    assert "Traceback" not in err and "interrupted by SIGTERM" in err


def _wait_for_more(run_dir, rows: int, proc: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with sqlite3.connect(run_dir / "programs.db") as db:
            if db.execute("SELECT count(*) FROM programs").fetchone()[0] >= rows:
                return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    raise AssertionError(f"fewer than {rows} programs after {seconds} s")


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.NoSuchProcess:  # a short-lived helper (a sandbox session) that has ended since
        return ""
