"""The proposer contract (`evolve.testing.ProposerContract`) against the built-in proposers, the docstring's
example, and the OpenAI-compatible model and ensemble on the project's fake server."""

from __future__ import annotations

import textwrap

import pytest

from evolve.config import ModelConfig
from evolve.problems import get_problem, read_initial_program
from evolve.proposals.llm import Ensemble, OfflineMutator, OpenAIModel
from evolve.proposals.llm.base import Proposal, Proposer
from evolve.testing import FakeOpenAIServer, FakeReply, ProposerContract


def _edit(request: dict) -> FakeReply:
    """A reply whose edit applies to circle_packing's initial program: one constant of `refine` changed."""
    line = next(line for line in read_initial_program(get_problem("circle_packing")).splitlines()
                if line.startswith("def refine("))
    return FakeReply(f"<<<<<<< SEARCH\n{line}\n=======\n{line.replace('steps=300', 'steps=320')}\n>>>>>>> REPLACE\n",
                     prompt_tokens=100, completion_tokens=20)


class TestOfflineMutator(ProposerContract):
    deterministic = True

    def make_proposer(self, seed):
        return OfflineMutator(seed=seed)


class TestDocstringExample(ProposerContract):
    """The complete subclass in `Proposer`'s docstring runs and keeps the contract."""

    deterministic = True

    def make_proposer(self, seed):
        example = Proposer.__doc__.split("Example (")[1].split("::\n", 1)[1].split("\n    Hand one in")[0]
        namespace: dict = {}
        exec(textwrap.dedent(example), namespace)
        return namespace["NudgeConstants"](seed=seed)


class _OnFakeServer(ProposerContract):
    server: FakeOpenAIServer

    @classmethod
    def setup_class(cls):
        cls.server = FakeOpenAIServer(_edit).start()

    @classmethod
    def teardown_class(cls):
        cls.server.stop()

    def model(self, name: str = "fake-model") -> OpenAIModel:
        return OpenAIModel(ModelConfig(model="fake-model", name=name, base_url=self.server.base_url, api_key_env=None,
                                       max_retries=0, timeout=30.0, context_tokens=32_000, max_tokens=1000))


class TestOpenAIModel(_OnFakeServer):
    def make_proposer(self, seed):
        return self.model()

    def test_the_prompt_reaches_the_server(self):
        before = len(self.server.requests)
        proposal = self.run(lambda proposer: proposer.propose(self.prompt(1)))
        assert proposal.model == "fake-model" and "steps=320" in proposal.text
        assert [r["messages"] for r in self.server.requests[before:]] == [self.prompt(1).messages]


class TestEnsemble(_OnFakeServer):
    def make_proposer(self, seed):
        return Ensemble([self.model("a"), self.model("b")], seed=seed)


class _Broken(Proposer):
    name = "broken"

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply

    async def propose(self, prompt):
        if isinstance(self.reply, Exception):
            raise self.reply
        return Proposal(text=self.reply, model=self.name)


@pytest.mark.parametrize("reply, check, message", [
    ("no edit in this reply", "test_answers_real_prompts", "does not apply to its parent"),
    (ValueError("a bug"), "test_concurrent_proposals", "a bug"),
])
def test_the_contract_fails_a_proposer_that_breaks_it(reply, check, message):
    class Suite(ProposerContract):
        def make_proposer(self, seed):
            return _Broken(reply)

    with pytest.raises((AssertionError, ValueError), match=message):
        getattr(Suite(), check)()


def test_the_contract_wants_a_name():
    class Unnamed(_Broken):
        name = ""

    class Suite(ProposerContract):
        def make_proposer(self, seed):
            return Unnamed("x")

    with pytest.raises(AssertionError, match="name"):
        Suite().test_name_is_set()
