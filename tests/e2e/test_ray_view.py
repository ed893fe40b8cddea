"""What Ray's dashboard shows of campaigns, read back through its APIs: a named job per campaign
with its problem, run dir and config; actors and tasks named after the campaign, so a sweep's two
campaigns are told apart; a private instance pinned to 127.0.0.1 that says where its dashboard is."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

# A private Ray instance with the dashboard (the state API is served by it), started by evolve's own
# `connect`; it lives until its stdin closes.
_INSTANCE = r"""
import json, sys
from evolve.config import RayConfig
from evolve.evaluation.ray_pool import connect
info = connect(RayConfig(include_dashboard=True, num_cpus=2))
print(json.dumps({"address": info.address, "dashboard": info.dashboard_url, "node_ip": info.node_ip,
                  "line": info.describe()}), flush=True)
sys.stdin.read()
"""

_CAMPAIGN = r"""
import sys
import evolve
run_dir, seed, address = sys.argv[1:]
evolve.run("circle_packing", ["llm=offline", "budget.iterations=5", f"seed={seed}", "ray.num_workers=1",
                              f"ray.address={address}", "ray.local_start=false"], run_dir=run_dir)  # all on Ray
"""


@pytest.fixture
def dashboard_instance(cli_env):
    proc = subprocess.Popen([sys.executable, "-c", _INSTANCE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env)
    try:
        line = proc.stdout.readline()
        assert line, f"the Ray instance did not start: {proc.stderr.read()[-3000:]}"
        yield json.loads(line)
    finally:
        proc.stdin.close()  # the instance shuts down with its driver
        proc.wait(timeout=120)


def _until(read, holds, what: str, limit: float = 120.0) -> None:
    """Poll `read()` until `holds(value)`; Ray's task events reach the GCS in batches."""
    deadline, value = time.monotonic() + limit, None
    while time.monotonic() < deadline:
        value = read()
        if holds(value):
            return
        time.sleep(1.0)
    pytest.fail(f"{what}: not within {limit:g} s; last saw {value!r}")


def _programs(run_dir: Path) -> tuple[str, Counter]:
    """The campaign's name and the tasks it ran on Ray, as the dashboard should list them: one finished
    `evaluate` task per evaluated program, and one `validate` task (circle_packing has no validation data:
    the first validation finds that out, and the campaign asks no more)."""
    from evolve.storage.rundir import campaign_name, load_config, open_database

    config = load_config(run_dir)
    name = campaign_name(config, run_dir)
    with open_database(config, run_dir, read_only=True) as db:
        programs = db.programs()
    return name, Counter({(f"evaluate:{name}", "FINISHED"): sum(p.status.is_evaluated() for p in programs),
                          (f"validate:{name}", "FINISHED"): 1})


def test_each_campaign_is_a_named_job_with_named_actors_and_tasks(ray_address, dashboard_instance, cli_env,
                                                                  evolve_bin, tmp_path):
    # ray_address: this process's Ray set-up turns on token auth, which the state API's client needs
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_actors, list_tasks

    ray = dashboard_instance
    assert ray["node_ip"] == "127.0.0.1" and ray["address"].startswith("127.0.0.1:")
    assert ray["dashboard"].startswith("http://127.0.0.1:")
    assert "ray get-auth-token" in ray["line"] or "RAY_AUTH_MODE=disabled" in ray["line"]
    env = dict(cli_env)
    env.pop("RAY_AUTH_MODE", None)  # as in a new shell: connect must send Ray's token by itself
    runs = [tmp_path / "one", tmp_path / "two"]
    for n, run_dir in enumerate(runs, 1):  # a sweep's two campaigns on one cluster, each its own driver
        # one through evolve.run, which leaves Ray the usual way; one through the `evolve` command, which
        # exits at once after its campaign: the events of its last tasks must reach the cluster all the same
        command = [sys.executable, "-c", _CAMPAIGN, str(run_dir), str(n), ray["address"]] if n == 1 else \
            [evolve_bin, "run", "llm=offline", "budget.iterations=5", f"seed={n}", "ray.num_workers=1",
             f"ray.address={ray['address']}", "ray.local_start=false", f"hydra.run.dir={run_dir}"]
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"Ray dashboard: {ray['dashboard']}" in out.stdout + out.stderr  # the terminal says where it is
        assert f"Ray dashboard: {ray['dashboard']}" in (run_dir / "campaign.log").read_text()
    campaigns = dict(_programs(run_dir) for run_dir in runs)
    assert len(campaigns) == 2

    address = ray["dashboard"]
    # the dashboard's job list reads /api/jobs/ (the state API's list_jobs leaves a driver's metadata out)
    jobs = {(job.metadata or {}).get("job_name"): job for job in JobSubmissionClient(address).list_jobs()}
    for run_dir, name in zip(runs, campaigns):
        metadata = jobs[name].metadata
        assert metadata["evolve.problem"] == "circle_packing"
        assert metadata["evolve.run_dir"] == str(run_dir.resolve())
        assert f"seed: {runs.index(run_dir) + 1}" in metadata["evolve.config"]
    actors = [a.name for a in list_actors(address=address, limit=1000)]
    for name in campaigns:
        assert any(actor.startswith(f"evaluator:{name}#") for actor in actors), actors

    def campaign_tasks():
        tasks = list_tasks(address=address, limit=10_000, raise_on_missing_output=False)
        return Counter((t.name, t.state) for t in tasks if t.name.startswith(("evaluate:", "validate:")))

    # every evaluation and validation of each campaign is one finished task named after that campaign (a
    # driver that left before the cluster had its last task events would leave some missing, or FAILED)
    expected = sum(campaigns.values(), Counter())
    _until(campaign_tasks, lambda seen: seen == expected,
           f"finished tasks named after their campaign, {dict(expected)}")

