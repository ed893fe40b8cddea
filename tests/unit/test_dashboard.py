"""The Ray view's pieces that need no Ray: the job's metadata, the start-up line, the Grafana dashboard."""

from __future__ import annotations

import json
import os
import re

from evolve.observe.dashboard import RayInfo, is_loopback, job_metadata
from evolve.observe.grafana import DASHBOARD
from evolve.observe.metrics import SERIES


def test_the_job_metadata_names_the_campaign_for_the_dashboard(circle_problem, tmp_path):
    from evolve.config import Config

    metadata = job_metadata("circle_packing/a", "circle_packing", tmp_path / "a", Config(problem=circle_problem))
    assert metadata["job_name"] == "circle_packing/a"  # the dashboard's "Name" column reads this key
    assert metadata["evolve.run_dir"] == str((tmp_path / "a").resolve())
    assert "circle_packing" in metadata["evolve.config"]
    assert all(isinstance(v, str) for v in metadata.values())  # Ray's job metadata holds strings only


def test_the_start_line_gives_the_real_address_and_how_to_sign_in(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    on = RayInfo.from_address_info({"gcs_address": "127.0.0.1:1", "webui_url": "127.0.0.1:8266"}, local=True)
    assert on.dashboard_url == "http://127.0.0.1:8266"
    assert "http://127.0.0.1:8266" in on.describe() and "ray get-auth-token" in on.describe()
    off = RayInfo.from_address_info({"gcs_address": "127.0.0.1:1", "webui_url": ""}, local=True)
    assert "off" in off.describe() and "ray.include_dashboard=true" in off.describe()
    assert "ray.address=auto" in off.describe()


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("192.0.2.2") and not is_loopback("head.example")


def test_the_grafana_dashboard_charts_exactly_the_exported_series():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = set(re.findall(r"\bray_evolve_\w+", " ".join(exprs)))
    assert named <= set(SERIES), f"queries name series nobody exports: {named - set(SERIES)}"
    charted = {SERIES[s] for s in named}
    assert charted == set(SERIES.values()), f"exported but never charted: {set(SERIES.values()) - charted}"
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["datasource"]["uid"] == "${datasource}"
        assert all('campaign=~"$campaign"' in t["expr"] for t in panel["targets"])
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert os.path.basename(DASHBOARD) == "evolve.json"
