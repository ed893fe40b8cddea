"""Third-party proposers and sandbox backends, found through entry points of a distribution on sys.path."""

from __future__ import annotations

import asyncio
import sys

import pytest

from evaluators import evaluate_program
from evolve import plugins
from evolve.config import LLMConfig, SandboxConfig
from evolve.errors import ConfigError
from evolve.evaluation.sandboxing import make_sandbox, visible_paths
from evolve.proposals.edits import apply_proposal
from evolve.proposals.llm import make_proposer
from evolve.testing import ProposerContract
from evolve.testing.attacks import HONEST, ContractEvaluator
from sandboxes import SandboxLimits
from tests.plugin_dist import write_plugin_dist


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The package name of a distribution with a proposer `steps` and a sandbox `recorded`, on sys.path."""
    name = write_plugin_dist(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.DISABLE_VARIABLE, raising=False)
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_llm_kind_names_a_third_party_proposer(plugin, circle_problem):
    config = LLMConfig(kind="steps")
    proposer = make_proposer(config, seed=5)
    assert type(proposer).__module__ == f"{plugin}.proposer" and (proposer.config, proposer.seed) == (config, 5)

    class Contract(ProposerContract):
        def make_proposer(self, seed):
            return make_proposer(LLMConfig(kind="steps"), seed)

    contract = Contract()
    prompt = contract.prompt(3)
    proposal = asyncio.run(proposer.propose(prompt))
    assert "steps=313" in apply_proposal(prompt.parent.code, proposal.text) and proposal.model == "steps"
    contract.test_answers_real_prompts()
    contract.test_concurrent_proposals()


def test_sandbox_kind_names_a_third_party_backend(plugin, circle_problem):
    config = SandboxConfig(kind="recorded")
    sandbox = make_sandbox(config, circle_problem)
    try:
        assert type(sandbox).__module__ == f"{plugin}.sandbox"
        assert sandbox.config == config and sandbox.allow == visible_paths(config, circle_problem)
        assert sandbox.layers()["plugin"].startswith("recorded")
        result = evaluate_program(ContractEvaluator(), sandbox, HONEST, SandboxLimits())
        assert result.valid and result.score == 1.0, result.feedback
    finally:
        sandbox.close()


def test_an_unknown_name_is_one_line_listing_the_built_ins_and_the_plugins(plugin):
    with pytest.raises(ConfigError) as raised:
        make_proposer(LLMConfig(kind="stesp"))
    assert str(raised.value) == ("llm.kind='stesp' is not known; use one of offline, openai, ensemble, tiers, replay; "
                                 "installed plugins (evolve.proposers): steps")
    with pytest.raises(ConfigError) as raised:
        make_sandbox(SandboxConfig(kind="firecracker"))
    assert str(raised.value) == ("sandbox.kind='firecracker' is not known; use one of process, docker; "
                                 "installed plugins (evolve.sandboxes): recorded")


def test_plugins_can_be_turned_off(plugin, monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_VARIABLE, "1")
    with pytest.raises(ConfigError, match=r"^llm.kind='steps' is not known; use one of offline, openai, ensemble, "
                                          r"tiers, replay; installed plugins \(evolve.proposers\): none "
                                          r"\(EVOLVE_DISABLE_PLUGINS is set\)$"):
        make_proposer(LLMConfig(kind="steps"))


def test_a_plugin_that_is_not_a_proposer_or_does_not_import_is_one_line(tmp_path, monkeypatch):
    meta = tmp_path / "broken_plugin-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text("[evolve.proposers]\nmissing = no_such_module_here:Model\n"
                                           "wrong = builtins:slice\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.DISABLE_VARIABLE, raising=False)
    with pytest.raises(ConfigError, match=r"^llm.kind='missing': its plugin no_such_module_here:Model failed to "
                                          r"load: ModuleNotFoundError: .*; fix or reinstall the package"):
        make_proposer(LLMConfig(kind="missing"))
    with pytest.raises(ConfigError, match=r"^llm.kind='wrong': the plugin gave a slice, not a Proposer"):
        make_proposer(LLMConfig(kind="wrong"))

