"""A campaign on a third-party proposer and sandbox, chosen by name on the command line (entry points of a
distribution on the path, no pip install), and the one line for a name nothing provides."""

from __future__ import annotations

import os

import pytest

from tests.e2e.test_cli import evolve, rows
from tests.plugin_dist import write_plugin_dist

pytestmark = pytest.mark.e2e


@pytest.fixture
def plugin_env(cli_env, tmp_path):
    """The CLI's environment with plugins on: the distribution's folder first on the path."""
    folder = tmp_path / "site"
    write_plugin_dist(folder)
    env = {k: v for k, v in cli_env.items() if k != "EVOLVE_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return env


def test_a_campaign_runs_on_a_third_party_proposer_and_sandbox(evolve_bin, plugin_env, tmp_path):
    run = tmp_path / "run"
    # a short campaign in this process's slots: Ray never starts, so the plugin is found where the slots run
    out = evolve(evolve_bin, plugin_env, "run", "llm.kind=steps", "sandbox.kind=recorded", "budget.iterations=8",
                 "ray.start_after=600", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    found = rows(run / "programs.db", "select proposer, status from programs where iteration > 0")
    assert len(found) == 8 and {p for p, _ in found} == {"steps"}
    assert any(s == "valid" for _, s in found), found
    assert "sandbox layer plugin: recorded: the process backend under another name" in \
        (run / "campaign.log").read_text()


def test_an_unknown_kind_is_one_line(evolve_bin, plugin_env, tmp_path):
    unknown_llm = ("llm.kind='stpes' is not known; use one of offline, openai, ensemble, tiers, replay; "
                   "installed plugins (evolve.proposers): steps")
    unknown_sandbox = ("sandbox.kind='vm' is not known; use one of process, docker; installed plugins "
                       "(evolve.sandboxes): recorded")
    for setting, message in (("llm.kind=stpes", unknown_llm), ("sandbox.kind=vm", unknown_sandbox)):
        run = tmp_path / setting.partition(".")[0]
        out = evolve(evolve_bin, plugin_env, "run", setting, "budget.iterations=2", f"hydra.run.dir={run}")
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("evolve:")]
        assert errors == [f"evolve: {message} (nothing was kept: {run} is removed)"], out.stderr
