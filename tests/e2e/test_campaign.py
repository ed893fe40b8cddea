"""Campaigns in-process on the session's Ray instance, with a scripted LLM behind the real openai client."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.errors import ConfigError, EvolveError, InitialProgramError
from evolve.program import ProgramStatus
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e


def _config(problem, tmp_path, iterations, **llm):
    return Config(
        problem=problem, seed=0, progress="off",
        llm=LLMConfig(kind="openai", model="fake", api_key_env=None, max_retries=0, timeout=10, concurrency=2, **llm),
        database=DatabaseConfig(islands=2, migration_interval=5),
        ray=RayConfig(num_workers=2), budget=BudgetConfig(iterations=iterations),
    )


class StepsTuner:
    """Answers like an LLM: raises the optimiser's step count, one more edit each time; first a bad edit."""

    def __init__(self):
        self.calls = 0

    def __call__(self, request):
        self.calls += 1
        user = request["messages"][1]["content"]
        if self.calls == 1:
            return "Try this.\n<<<<<<< SEARCH\n    this line does not exist\n=======\n    x = 1\n>>>>>>> REPLACE\n"
        if self.calls == 2:
            return FakeReply("busy", status=503)
        line = re.search(r"^def refine\(centers, steps=(\d+).*\n", user, re.MULTILINE)
        new = line.group(0).replace(f"steps={line.group(1)}", f"steps={int(line.group(1)) + 50 * self.calls}")
        return f"More optimisation steps.\n<<<<<<< SEARCH\n{line.group(0)}=======\n{new}>>>>>>> REPLACE\n"


def test_llm_driven_campaign_improves_and_records_everything(ray_address, circle_problem, tmp_path):
    tuner = StepsTuner()
    with FakeOpenAIServer(tuner) as server:
        config = _config(circle_problem, tmp_path, 12, base_url=server.base_url)
        result = Campaign(config, tmp_path).run()
        prompts = [r["messages"][1]["content"] for r in server.requests]
    assert result.iterations == 12 and result.best_score > result.initial_score
    assert result.stop_reason == "budget.iterations=12 reached"
    # the failed edit's reason reached a later prompt
    assert any("SEARCH text not found" in p for p in prompts[1:])
    with ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", config.name or f"circle_packing/{tmp_path.name}",
                         config=config.database) as db:
        programs = list(db.programs())
        statuses = [p.status for p in programs]
        assert len(programs) == 13 and programs[0].iteration == 0 and programs[0].proposer == "initial"
        assert ProgramStatus.EDIT_FAILED in statuses and ProgramStatus.PROPOSAL_FAILED in statuses
        assert statuses.count(ProgramStatus.VALID) >= 5
        valid = [p for p in programs if p.status is ProgramStatus.VALID and p.iteration > 0]
        assert all(p.proposer == "fake" and p.parent_id is not None and p.eval_seconds > 0 for p in valid)
        assert all(p.metrics["sum_radii"] == p.score for p in valid)
        assert db.best().score == result.best_score
        assert (tmp_path / "best.py").read_text() == db.best().code
        failed = next(p for p in programs if p.status is ProgramStatus.EDIT_FAILED)
        assert "not found" in failed.error and "does not exist" in failed.proposal


def test_a_dead_endpoint_stops_with_one_clear_error(ray_address, circle_problem, tmp_path):
    with FakeOpenAIServer() as server:
        url = server.base_url
    config = _config(circle_problem, tmp_path, 50, base_url=url, max_consecutive_failures=4)
    with pytest.raises(ConfigError, match=f"llm.base_url={url} does not answer \\(connection refused\\)"):
        Campaign(config, tmp_path / "probed").run()  # the probe: before Ray, the workers or a database
    assert not (tmp_path / "probed" / "programs.db").exists()
    config.llm.probe_timeout = None  # without the probe, the failures in a row stop it
    with pytest.raises(EvolveError, match="4 failed proposals in a row; last error: fake: APIConnectionError"):
        Campaign(config, tmp_path).run()
    with ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", f"circle_packing/{tmp_path.name}") as db:
        counts = db.counts()
    assert counts["valid"] == 1 and counts["proposal_failed"] >= 4  # the initial program was kept


def test_an_invalid_initial_program_stops_before_any_proposal(ray_address, circle_problem, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def solve(n):\n    return [[0.5, 0.5, 0.9]] * n\n")
    problem = dataclasses.replace(circle_problem, initial=str(broken))
    with FakeOpenAIServer() as server:
        config = _config(problem, tmp_path, 5, base_url=server.base_url)
        with pytest.raises(InitialProgramError, match="initial program of problem 'circle_packing' is invalid: "
                                                      r"circle 0 .* leaves the unit square"):
            Campaign(config, tmp_path / "run").run()
        assert server.requests == []


def test_target_score_and_patience_stop_early(ray_address, circle_problem, tmp_path):
    config = dataclasses.replace(_config(circle_problem, tmp_path, 100), llm=LLMConfig(),
                                 budget=BudgetConfig(iterations=100, target_score=2.0))
    result = Campaign(config, tmp_path / "target").run()
    assert result.iterations == 0 and result.stop_reason.startswith("budget.target_score=2")
    config = dataclasses.replace(config, budget=BudgetConfig(iterations=100, patience=6),
                                 database=DatabaseConfig(islands=1))

    from evolve.proposals.llm.base import Proposal, Proposer

    class Useless(Proposer):
        name = "useless"

        async def propose(self, prompt):
            return Proposal(text="```python\n" + prompt.parent.code.replace("rng(7)", "rng(7) ") + "```",
                            model=self.name)

    result = Campaign(config, tmp_path / "patience", proposer=Useless()).run()
    assert result.stop_reason.startswith("budget.patience=6") and 6 <= result.iterations < 12


def test_wall_clock_budget_stops_and_keeps_what_finished(ray_address, circle_problem, tmp_path):
    config = dataclasses.replace(_config(circle_problem, tmp_path, 10_000), llm=LLMConfig(),
                                 budget=BudgetConfig(iterations=10_000, wall_seconds=8.0))  # room for a slow start
    result = Campaign(config, tmp_path).run()
    assert result.stop_reason == "budget.wall_seconds=8 reached" and 0 < result.iterations < 10_000
    with ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", f"circle_packing/{tmp_path.name}") as db:
        assert db.iterations == result.iterations and db.size == result.iterations + 1


def test_resume_after_fixing_a_broken_initial_program(ray_address, circle_problem, tmp_path):
    initial = tmp_path / "initial.py"
    initial.write_text("def solve(n):\n    raise ValueError('not yet')\n")
    problem = dataclasses.replace(circle_problem, initial=str(initial))
    config = dataclasses.replace(_config(problem, tmp_path, 4), llm=LLMConfig())
    with pytest.raises(InitialProgramError, match="not yet"):
        Campaign(config, tmp_path / "run").run()
    initial.write_text((Path(circle_problem.directory) / "initial.py").read_text())
    result = Campaign(config, tmp_path / "run").run()
    assert result.iterations == 4 and result.initial_score > 2.4
    with ProgramDatabase(f"sqlite:///{tmp_path / 'run' / 'programs.db'}", "circle_packing/run") as db:
        first = [p for p in db.programs() if p.iteration == 0]
        assert [p.status for p in first] == [ProgramStatus.INVALID, ProgramStatus.VALID] and db.iterations == 4


def test_a_child_scored_exactly_as_its_parent_is_reported_to_the_proposer(circle_problem, tmp_path):
    from evolve.proposals.llm.base import Proposal, Proposer

    class Idle(Proposer):
        """Adds an unused assignment (the same score) or breaks the program (no score), in turn."""

        name = "idle"

        def __init__(self):
            self.proposed, self.unchanged, self.observed = 0, [], []

        async def propose(self, prompt):
            self.proposed += 1
            line = f"UNUSED_{self.proposed} = {self.proposed}\n" if self.proposed % 2 else "raise ValueError\n"
            code = prompt.parent.code.replace("# EVOLVE-BLOCK-END", line + "# EVOLVE-BLOCK-END")
            return Proposal(text="```python\n" + code + "```", model=self.name, reason=str(self.proposed))

        def observe(self, proposal, improved):
            self.observed.append(proposal.reason)

        def observe_unchanged(self, proposal):
            assert self.observed[-1] == proposal.reason  # right after its own `observe`
            self.unchanged.append(int(proposal.reason))

    config = dataclasses.replace(_config(circle_problem, tmp_path, 6), llm=LLMConfig(concurrency=1),
                                 ray=RayConfig(start_after=1e9), database=DatabaseConfig(islands=1))
    idle = Idle()
    Campaign(config, tmp_path / "run", proposer=idle).run()
    assert len(idle.observed) == 6 and idle.unchanged == [1, 3, 5]
