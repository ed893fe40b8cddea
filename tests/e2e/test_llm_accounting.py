"""Proposals against the fake OpenAI-compatible server: replies that never apply, time per proposal,
fresh prompts, per-model outcomes in `evolve status`, and prompts fitted to a model's context."""

from __future__ import annotations

import logging
import re
import statistics
import subprocess

import openai
import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, ModelConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.errors import EvolveError
from evolve.program import ProgramStatus
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e

_NO_EDIT = "I would not change anything."


def _steps_edit(request, delta):
    user = request["messages"][1]["content"]
    line = re.search(r"^def refine\(centers, steps=(\d+).*\n", user, re.MULTILINE)
    new = line.group(0).replace(f"steps={line.group(1)}", f"steps={max(10, int(line.group(1)) + delta)}")
    return f"Change the number of steps.\n<<<<<<< SEARCH\n{line.group(0)}=======\n{new}>>>>>>> REPLACE\n"


def _config(problem, models, iterations, concurrency=2, **llm):
    return Config(problem=problem, seed=0, progress="off",
                  llm=LLMConfig(kind="ensemble", models=models, concurrency=concurrency, **llm),
                  database=DatabaseConfig(islands=1), ray=RayConfig(num_workers=2),
                  budget=BudgetConfig(iterations=iterations))


def _db(tmp_path):
    return ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", f"circle_packing/{tmp_path.name}")


def test_replies_that_never_apply_stop_the_campaign_with_their_reasons(evolve_bin, cli_env, ray_address, tmp_path):
    run_dir = tmp_path / "run"
    counter = iter(range(1000))

    def responder(request):  # two kinds of unusable reply: no edit at all, and a SEARCH that is not there
        if next(counter) % 3 == 0:
            return "<<<<<<< SEARCH\ndef nowhere():\n=======\ndef somewhere():\n>>>>>>> REPLACE\n"
        return _NO_EDIT

    with FakeOpenAIServer(responder) as server:
        run = subprocess.run(
            [evolve_bin, "run", "llm=openai", f"llm.base_url={server.base_url}", "llm.model=fake-model",
             "llm.api_key_env=null", "llm.max_unapplied_in_a_row=6", "llm.concurrency=2", "budget.iterations=40",
             f"ray.address={ray_address}", "ray.num_workers=2", "database.islands=1", f"hydra.run.dir={run_dir}"],
            capture_output=True, text=True, env=cli_env, timeout=300)
        asked = len(server.requests)
    terminal = run.stdout + run.stderr
    assert run.returncode == 1, terminal
    assert "6 proposals in a row could not be applied; top reasons: no edit found 4, SEARCH not found 2" in terminal
    assert "llm.on_unapplied=warn" in terminal
    assert asked < 12  # stopped: the rest of the budget was not spent
    log = (run_dir / "campaign.log").read_text()
    assert "ERROR" in log and "top reasons: no edit found 4, SEARCH not found 2" in log
    status = subprocess.run([evolve_bin, "status", str(run_dir)], capture_output=True, text=True,
                            env={**cli_env, "COLUMNS": "200"}, timeout=120)
    assert status.returncode == 0, status.stderr
    out = " ".join(status.stdout.split())
    assert "the campaign stopped: the last 6 proposals in a row could not be applied" in out
    assert "no edit found 4, SEARCH not found 2" in out
    assert re.search(r"valid share\s*│\s*- \(no child evaluated\)", out), out  # the initial program is no child
    row = next(line for line in status.stdout.splitlines() if line.lstrip("│┃ ").startswith("fake-model")
               and "found" in line)
    cells = [c.strip() for c in re.split(r"[│┃]", row) if c.strip()]
    assert cells[1:4] == ["6", "0", "6"], row  # proposals, applied, edit failed


def test_replies_that_never_apply_warn_and_go_on_when_told(ray_address, circle_problem, tmp_path, caplog):
    with FakeOpenAIServer(lambda request: _NO_EDIT) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, max_retries=0)]
        config = _config(circle_problem, models, 8, max_unapplied_in_a_row=3, on_unapplied="warn")
        with caplog.at_level(logging.WARNING, logger="evolve"):
            result = Campaign(config, tmp_path).run()
    assert result.iterations == 8
    warnings = [r.getMessage() for r in caplog.records if "could not be applied" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in caplog.records
                                      if "could not be applied" in r.getMessage())
    assert "3 proposals in a row could not be applied; top reasons: no edit found 3" in warnings[0]
    assert "6 proposals in a row" in warnings[1] and "llm.on_unapplied=warn" in warnings[1]


def test_time_per_proposal_excludes_the_wait_for_a_model_slot(ray_address, circle_problem, tmp_path):
    latency = 1.0
    counter = iter(range(1000))

    def responder(request):
        k = next(counter)
        if k == 0:  # the first reply fails: every later prompt, built when the slot is free, shows why
            return FakeReply(_NO_EDIT, delay=latency)
        return FakeReply(_steps_edit(request, 20 + 3 * k), delay=latency)

    with FakeOpenAIServer(responder) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, max_retries=0, concurrency=1)]  # one slot
        config = _config(circle_problem, models, 9, concurrency=3)  # three proposals in flight
        Campaign(config, tmp_path).run()
        served = list(server.seconds)
        prompts = [r["messages"][1]["content"] for r in server.requests]
    with _db(tmp_path) as db:
        recorded = [c["seconds"] for c in db.calls()]
        programs = [p for p in db.programs() if p.iteration > 0]
    assert len(recorded) == len(served) == 9
    # queueing for the one slot would give about 3x the server's time (the old accounting: ~5 s here)
    assert statistics.median(recorded) < 2 * statistics.median(served), (recorded, served)
    assert all(p.propose_seconds < 2 * max(served) for p in programs), [p.propose_seconds for p in programs]
    assert all("holds neither SEARCH/REPLACE" in prompt for prompt in prompts[1:]), "a stale prompt was sent"


def test_fake_server_refuses_a_prompt_over_its_context():
    with FakeOpenAIServer(lambda request: "ok", context_tokens=100) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="exceeds the available context size"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x" * 400}],
                                           max_tokens=20)
        assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x" * 200}],
                                              max_tokens=20).choices[0].message.content == "ok"
        client.close()
    assert len(server.refused) == 1 and len(server.requests) == 1


def test_prompts_are_fitted_to_a_small_context(ray_address, circle_problem, tmp_path, caplog):
    counter = iter(range(1000))
    max_tokens = 256
    # room for the problem, the parent and its feedback (as the server counts: 4 characters a token, which the
    # model's counter learns from the usage of its replies), but not for the inspirations beside them
    context = _prompt_chars(circle_problem) // 4 + 100 + max_tokens
    with FakeOpenAIServer(lambda r: _steps_edit(r, 15 + 4 * next(counter)), context_tokens=context) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, max_retries=0, max_tokens=max_tokens,
                              context_tokens=context)]
        config = _config(circle_problem, models, 16)
        config.database.num_top_inspirations, config.database.num_diverse_inspirations = 2, 2
        with caplog.at_level(logging.INFO, logger="evolve"):
            result = Campaign(config, tmp_path).run()
        refused = len(server.refused)
        served = sum(r["max_tokens"] == max_tokens for r in server.requests)
        counted = sum(r["max_tokens"] == 1 for r in server.requests)  # a prompt counted before the first usage
    assert refused == 0 and served == 16 and result.iterations == 16 and counted <= config.llm.concurrency
    trimmed = [r.getMessage() for r in caplog.records if "prompt trimmed" in r.getMessage()]
    assert trimmed and all("to fit the model's context" in line for line in trimmed)
    assert any(re.search(r"left out \d+ inspirations?", line) for line in trimmed), trimmed
    with _db(tmp_path) as db:
        assert not any(p.status is ProgramStatus.PROPOSAL_FAILED for p in db.programs())


def test_a_prompt_that_cannot_fit_is_never_sent(ray_address, circle_problem, tmp_path):
    with FakeOpenAIServer(lambda r: _NO_EDIT) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, max_retries=0, max_tokens=256,
                              context_tokens=512)]
        config = _config(circle_problem, models, 10, max_consecutive_failures=3)
        with pytest.raises(EvolveError, match=r"prompt needs about .* tokens even without"):
            Campaign(config, tmp_path).run()
        assert server.requests == []
    with _db(tmp_path) as db:
        failed = [p for p in db.programs() if p.iteration > 0]
    assert failed and all(p.status is ProgramStatus.PROPOSAL_FAILED and "context_tokens" in p.error for p in failed)


def _prompt_chars(problem):
    """Characters of the bare prompt for the initial program (no inspirations, failures or scratchpad)."""
    from pathlib import Path

    from evolve.problems import evaluator_class, read_initial_program
    from evolve.program import Program
    from evolve.proposals.edits import normalized_hash
    from evolve.proposals.prompts import PromptBuilder

    readme = Path(problem.directory) / problem.readme
    builder = PromptBuilder(readme.read_text() if readme.is_file() else problem.description,
                            evaluator_class(problem).entrypoint)
    code = read_initial_program(problem)
    parent = Program(id=1, iteration=0, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                     score=1.0, feedback="x" * 1500)
    return sum(len(m["content"]) for m in builder.build(parent, [], []).messages)
