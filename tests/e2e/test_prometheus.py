"""A campaign's metrics, read back through a real Prometheus (Debian's, started by scripts/prometheus.sh on
the session's Ray instance), agree with its database."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter

import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.storage.rundir import campaign_name, open_database

from ..conftest import ROOT

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(ray_address, tmp_path):
    """Prometheus scraping the session's Ray instance; its HTTP API's base URL."""
    import ray

    if shutil.which("prometheus") is None and os.environ.get("CI"):
        pytest.fail("prometheus is not installed; scripts/test.sh installs it (bash scripts/prometheus.sh --install)")
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed: bash scripts/prometheus.sh --install (as root)")
    session = ray._private.worker._global_node.get_session_dir_path()
    port = _free_port()
    env = dict(os.environ, PROMETHEUS_PORT=str(port), PROMETHEUS_DATA=str(tmp_path / "prometheus"),
               PROMETHEUS_SCRAPE_INTERVAL="1s")
    with open(tmp_path / "prometheus.log", "w") as log:
        proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "prometheus.sh"), session], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.load(reply)["data"]["result"]
    except OSError:  # not listening yet
        return []


def test_campaign_metrics_reach_prometheus_and_agree_with_the_database(prometheus, circle_problem, tmp_path):
    config = Config(problem=circle_problem, seed=3, progress="off", llm=LLMConfig(kind="offline"),
                    database=DatabaseConfig(islands=2), ray=RayConfig(num_workers=2),
                    budget=BudgetConfig(iterations=16))
    run_dir = tmp_path / f"prometheus-{uuid.uuid4().hex[:8]}"  # its own campaign tag: this process's Ray metrics
    result = Campaign(config, run_dir).run()                     # also hold earlier tests' campaigns
    name = campaign_name(config, run_dir)
    with open_database(config, run_dir, read_only=True) as db:
        programs = list(db.programs())
        best = db.best().score
    by_status = dict(Counter(p.status.value for p in programs))
    assert sum(by_status.values()) == 17 and result.best_score == best

    selector = f'{{campaign="{name}",problem="circle_packing"}}'
    seen: dict = {}
    deadline = time.monotonic() + 180  # Ray's agent exports every few seconds; Prometheus scrapes each second
    while time.monotonic() < deadline:
        counts = {r["metric"]["status"]: round(float(r["value"][1]))
                  for r in _query(prometheus, f"sum by (status) (ray_evolve_programs_total{selector})")}
        best_seen = [float(r["value"][1]) for r in _query(prometheus, f"ray_evolve_best_score{selector}")]
        seen = {"counts": counts, "best": best_seen}
        if counts == by_status and best_seen == [best]:
            break
        time.sleep(1.0)
    else:
        log = (tmp_path / "prometheus.log").read_text()[-2000:]
        pytest.fail(f"Prometheus never agreed with the database {by_status}, best {best}: last saw {seen}\n{log}")
    evaluated = sum(n for status, n in by_status.items() if status in ("valid", "invalid", "evaluator_error"))
    stages = {r["metric"]["stage"]: float(r["value"][1])
              for r in _query(prometheus, f"sum by (stage) (ray_evolve_evaluation_seconds_count{selector})")}
    assert stages["load"] == evaluated and 0 < stages["evaluate"] <= evaluated  # circle_packing's one stage
    failed = sum(n for status, n in by_status.items() if status in ("invalid", "evaluator_error"))
    kinds = _query(prometheus, f"sum(ray_evolve_sandbox_failures_total{selector})")
    assert (round(float(kinds[0]["value"][1])) if kinds else 0) == failed
    calls = Counter((p.proposer, "failed" if p.status.value == "proposal_failed" else "ok") for p in programs
                    if p.iteration > 0)
    seen_calls = {(r["metric"]["model"], r["metric"]["outcome"]): round(float(r["value"][1])) for r in
                  _query(prometheus, f"sum by (model, outcome) (ray_evolve_llm_calls_total{selector})")}
    assert seen_calls == dict(calls)
    for series in ("ray_evolve_valid_share", "ray_evolve_evals_per_second", "ray_evolve_in_flight"):
        assert _query(prometheus, f"{series}{selector}"), series
