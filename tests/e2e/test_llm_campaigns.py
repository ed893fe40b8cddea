"""LLM-driven campaigns against the fake OpenAI-compatible server: faults, ensembles, accounting."""

from __future__ import annotations

import collections
import dataclasses
import re

import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, ModelConfig, NoveltyConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.program import ProgramStatus
from evolve.proposals.edits import evolve_blocks
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e


def _steps_edit(request, delta):
    user = request["messages"][1]["content"]
    line = re.search(r"^def refine\(centers, steps=(\d+).*\n", user, re.MULTILINE)
    new = line.group(0).replace(f"steps={line.group(1)}", f"steps={max(10, int(line.group(1)) + delta)}")
    return f"Change the number of steps.\n<<<<<<< SEARCH\n{line.group(0)}=======\n{new}>>>>>>> REPLACE\n"


def _config(problem, models, iterations, **llm):
    return Config(problem=problem, seed=0, progress="off",
                  llm=LLMConfig(kind="ensemble", models=models, concurrency=2, **llm),
                  database=DatabaseConfig(islands=1), ray=RayConfig(num_workers=2),
                  budget=BudgetConfig(iterations=iterations))


def _db(tmp_path):
    return ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", f"circle_packing/{tmp_path.name}")


def test_every_fault_is_survived_and_recorded(ray_address, circle_problem, tmp_path):
    # the live model's client retries once, so a fault that should fail a call comes twice in a row; a timeout
    # is not retried (llm.timeout bounds the whole call)
    script = collections.deque([
        FakeReply("slow down", status=429, headers={"retry-after": "0"}), "GOOD",  # retried, then fine
        FakeReply("upstream", status=502), FakeReply("upstream", status=502), "GOOD",
        FakeReply("late", delay=6.0), "GOOD",
        FakeReply(""), "GOOD",
        "TRUNCATED", "NO-EDIT", "OUTSIDE",
    ])

    counter = iter(range(1000))

    def responder(request):
        item = script.popleft() if script else "GOOD"
        if item == "GOOD":
            return _steps_edit(request, 20 + 7 * next(counter))  # distinct edits: no duplicates
        if item == "TRUNCATED":
            return FakeReply(_steps_edit(request, 40)[:60], finish_reason="length")
        if item == "NO-EDIT":
            return "I would not change anything."
        if item == "OUTSIDE":
            return ("Fix the entry point.\n"
                    "<<<<<<< SEARCH\ndef solve(n=26):\n=======\ndef solve(n=25):\n>>>>>>> REPLACE\n")
        return item

    with FakeOpenAIServer() as dead:
        dead_url = dead.base_url  # closed on exit: connections to it are refused
    with FakeOpenAIServer(responder) as server:
        models = [ModelConfig(model="m", name="live", base_url=server.base_url, max_retries=1, timeout=2.0,
                              price_input_per_million=1.0, price_output_per_million=2.0, concurrency=1),
                  ModelConfig(model="m", name="refused", base_url=dead_url, max_retries=0, timeout=1.0)]
        config = _config(circle_problem, models, 20, selection="fixed", rest_after=2, rest_seconds=600,
                         probe_timeout=None)  # no probe: the refused model is meant to fail mid-run
        result = Campaign(config, tmp_path).run()
    assert result.iterations == 20 and result.best_score > result.initial_score
    with _db(tmp_path) as db:
        programs = [p for p in db.programs() if p.iteration > 0]
        errors = " | ".join(p.error for p in programs)
        calls = db.calls()
        spend = db.spend()
    assert "InternalServerError" in errors and "Timeout" in errors and "the reply is empty" in errors
    assert "cut off at max_tokens" in errors and "neither SEARCH/REPLACE" in errors
    assert "outside the EVOLVE-BLOCKs" in errors and "APIConnectionError" in errors
    assert sum(p.proposer == "refused" for p in programs) == 2  # then rested; the live model carried on
    assert sum(p.status is ProgramStatus.VALID for p in programs) >= 5
    assert len(calls) == 20 and all(c["messages"] for c in calls)
    assert {c["model"] for c in calls if c["response"] is None} == {"refused", "live"}
    live = spend["live"]
    assert live["prompt_tokens"] > 0 and live["cost"] == pytest.approx(
        (live["prompt_tokens"] * 1.0 + live["completion_tokens"] * 2.0) / 1e6)


def test_adaptive_ensemble_shifts_to_the_model_that_pays_off(ray_address, circle_problem, tmp_path):
    counter = iter(range(1000))

    def responder(request):  # one endpoint, two models: which one answers is in the request
        k = next(counter)
        return _steps_edit(request, 20 + 3 * k if request["model"] == "good-cheap" else -60 - 3 * k)

    with FakeOpenAIServer(responder) as server:
        models = [ModelConfig(model="good-cheap", base_url=server.base_url, price_input_per_million=0.15,
                              price_output_per_million=0.6, max_retries=0),
                  ModelConfig(model="poor-pricey", base_url=server.base_url, price_input_per_million=5.0,
                              price_output_per_million=15.0, max_retries=0)]
        config = _config(circle_problem, models, 30, selection="thompson")
        Campaign(config, tmp_path).run()
        asked = [r["model"] for r in server.requests]
    assert collections.Counter(asked[15:])["good-cheap"] >= 12, asked
    with _db(tmp_path) as db:
        programs = [p for p in db.programs() if p.iteration > 0]
        spend = db.spend()
    assert all(p.choice.startswith("thompson") for p in programs)
    assert spend["good-cheap"]["improvements"] > spend["poor-pricey"]["improvements"]
    per_call = {name: spend[name]["cost"] / spend[name]["calls"] for name in ("poor-pricey", "good-cheap")}
    assert per_call["poor-pricey"] > 10 * per_call["good-cheap"]


def test_cost_cap_stops_the_campaign_cleanly(ray_address, circle_problem, tmp_path):
    counter = iter(range(1000))
    with FakeOpenAIServer(lambda r: FakeReply(_steps_edit(r, 20 + 3 * next(counter)), prompt_tokens=100_000,
                                              completion_tokens=1000)) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, price_input_per_million=10.0, max_retries=0)]
        config = dataclasses.replace(_config(circle_problem, models, 100),
                                     budget=BudgetConfig(iterations=100, max_cost_usd=5.0))
        result = Campaign(config, tmp_path).run()
    assert result.stop_reason.startswith("budget.max_cost_usd=5 reached")
    with _db(tmp_path) as db:
        assert 5.0 <= db.total_cost <= 5.0 + 4 * 1.0  # each call costs $1; the ones in flight finish
        assert db.iterations == len(db.calls()) < 100


def test_novelty_filter_rejects_cosmetic_and_tiny_changes_before_evaluation(ray_address, circle_problem, tmp_path):
    counter = iter(range(1000))

    def responder(request):
        k = next(counter)
        if k % 2 == 0:  # the parent again, reworded: renamed variables, new comments and docstrings
            code = re.search(r"```python\n(.*?)```", request["messages"][1]["content"], re.DOTALL).group(1)
            (start, end), = evolve_blocks(code)
            block = (code[start:end].replace("grad_r", f"gradient_radii{k}").replace("overlap", f"clash{k}")
                     .replace('"""Gradient ascent', f'"""(v{k}) Gradient ascent'))
            return "Cleaner names.\n```python\n" + code[:start] + block + code[end:] + "```\n"
        search, replace = _steps_edit(request, 10 + k).split("=======\n")  # one token changed: tiny
        if k % 4 == 3:  # three constants changed: a real edit
            replace = re.sub(r"lr=[\d.]+, penalty=[\d.]+", f"lr=0.0045, penalty={20 + k}.0", replace)
        return search + "=======\n" + replace

    with FakeOpenAIServer(responder) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, max_retries=0)]
        config = dataclasses.replace(_config(circle_problem, models, 16),
                                     novelty=NoveltyConfig(threshold=0.995))
        Campaign(config, tmp_path).run()
    with _db(tmp_path) as db:
        programs = [p for p in db.programs() if p.iteration > 0]
    similar = [p for p in programs if p.status is ProgramStatus.SIMILAR]
    assert sum("up to names, comments and docstrings" in p.error for p in similar) >= 6
    assert any("near-duplicate of program" in p.error and "novelty.threshold=0.995" in p.error for p in similar)
    real = [p for p in programs if "lr=0.0045" in p.proposal.split("=======")[-1]
            and "lr=0.0045" not in p.proposal.split("=======")[0]]  # the edits that changed three constants
    assert real and all(p.status is not ProgramStatus.SIMILAR for p in real)  # three constants: new enough
    assert all(p.eval_seconds is None for p in similar)  # rejected before evaluation
    assert any(p.status is ProgramStatus.VALID for p in programs)


def _sequence(run_dir):
    with ProgramDatabase(f"sqlite:///{run_dir / 'programs.db'}", f"circle_packing/{run_dir.name}") as db:
        return sorted((p.iteration, p.status.value, p.code_hash, p.score, p.parent_id is None) for p in db.programs())


def test_replay_reproduces_a_recorded_campaign_exactly(ray_address, circle_problem, tmp_path):
    counter = iter(range(1000))

    def responder(request):
        k = next(counter)
        if k % 5 == 4:
            return FakeReply("busy", status=503)
        if k % 7 == 6:
            return "no edit today"
        return _steps_edit(request, (-1) ** k * (15 + 5 * (k % 6)))  # some improve, some do not

    recorded, replayed = tmp_path / "recorded", tmp_path / "replayed"
    with FakeOpenAIServer(responder) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, max_retries=0, concurrency=3)]
        config = dataclasses.replace(_config(circle_problem, models, 24), database=DatabaseConfig(islands=2))
        config.llm.concurrency = 3
        Campaign(config, recorded).run()
    # no server now: the replay must not need one
    replay = dataclasses.replace(config, llm=LLMConfig(kind="replay", source=str(recorded), concurrency=3))
    result = Campaign(replay, replayed).run()
    assert result.iterations == 24
    original, again = _sequence(recorded), _sequence(replayed)
    assert again == original
    statuses = {status for _, status, *_ in original}
    assert {"valid", "proposal_failed", "edit_failed"} <= statuses


def test_replay_through_the_cli_of_an_offline_campaign(evolve_bin, cli_env, ray_address, tmp_path):
    import subprocess
    recorded, replayed = tmp_path / "recorded", tmp_path / "replayed"
    common = ["budget.iterations=20", f"ray.address={ray_address}", "database.islands=2"]
    first = subprocess.run([evolve_bin, "run", "seed=4", f"hydra.run.dir={recorded}", *common],
                           capture_output=True, text=True, env=cli_env, timeout=300)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([evolve_bin, "run", "llm=replay", f"llm.source={recorded}", f"hydra.run.dir={replayed}",
                            *common], capture_output=True, text=True, env=cli_env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert _sequence(replayed) == _sequence(recorded)
    missing = subprocess.run([evolve_bin, "run", "llm=replay", f"hydra.run.dir={tmp_path / 'x'}", *common],
                             capture_output=True, text=True, env=cli_env, timeout=300)
    assert missing.returncode != 0 and "llm.source" in missing.stderr


def test_prompts_mix_modes_and_carry_the_scratchpad(ray_address, circle_problem, tmp_path):
    counter = iter(range(1000))
    with FakeOpenAIServer(lambda r: _steps_edit(r, 15 + 4 * next(counter))) as server:
        models = [ModelConfig(model="m", base_url=server.base_url, max_retries=0)]
        config = _config(circle_problem, models, 24)
        config.prompt.full, config.prompt.crossover, config.prompt.scratchpad_interval = 0.3, 0.3, 5
        config.database.islands = 2
        Campaign(config, tmp_path).run()
        prompts = [r["messages"][1]["content"] for r in server.requests]
    asked = {mode: sum(text in p for p in prompts) for mode, text in
             (("diff", "as SEARCH/REPLACE blocks"), ("full", "give the whole program"), ("crossover", "Combine the"))}
    assert all(n > 0 for n in asked.values()), asked
    assert any("# Notes from this campaign" in p and "More steps" not in p and "Change the number of steps" in p
               for p in prompts[8:])
    with _db(tmp_path) as db:
        modes = collections.Counter(p.mode for p in db.programs() if p.iteration > 0)
    assert set(modes) <= {"diff", "full", "crossover"} and modes["diff"] > 0 and sum(modes.values()) == 24


FIRST_LINES = {  # the first line on the terminal, as each fault starts; the last line names the same cause
    "hang": r"has not answered in 0\.5 s \(hung or overloaded\?\); the request fails after 3 s \(llm\.timeout\)",
    500: r"is failing: InternalServerError: Error code: 500",
    "drop": r"is failing: APIConnectionError: Connection error \(RemoteProtocolError: Server disconnected",
}
LAST_ERRORS = {"hang": r"APITimeoutError: no answer within 3 s \(llm\.timeout\)",
               500: r"InternalServerError: Error code: 500", "drop": r"APIConnectionError: Connection error"}
WARN_AFTER = {"hang": 0.5, 500: 60, "drop": 60}  # a hung request is named by the watchdog, a failure as it comes


@pytest.mark.parametrize("fault", ["hang", 500, "drop"])
def test_a_faulty_endpoint_is_named_before_its_requests_pile_up_and_the_campaign_stops_in_one_line(
        fault, evolve_bin, cli_env, ray_address, tmp_path):
    from tests.e2e.test_cli import evolve

    run_dir = tmp_path / "run"
    with FakeOpenAIServer(model="fake-model") as server:
        server.fault = fault  # the model list still answers (the probe passes); every chat request hangs or fails
        out = evolve(evolve_bin, cli_env, "run", "problem=circle_packing", "llm=openai", "llm.model=fake-model",
                     f"llm.base_url={server.base_url}", "llm.api_key_env=null", "llm.timeout=3",
                     f"llm.warn_after_seconds={WARN_AFTER[fault]}", "llm.rest_seconds=0.5", "llm.max_wait_seconds=5",
                     "budget.iterations=500", f"hydra.run.dir={run_dir}", f"ray.address={ray_address}",
                     "ray.num_workers=2")
    lines = [line for line in out.stderr.splitlines() if line.startswith("evolve:")]
    assert out.returncode == 1, out.stderr
    assert re.fullmatch(re.escape(f"evolve: model fake-model at {server.base_url} ") + FIRST_LINES[fault] + ".*",
                        lines[0]), out.stderr
    assert re.match(r"evolve: every model has been resting or failing for 5 s \(llm\.max_wait_seconds\); "
                    r"last errors: fake-model: " + LAST_ERRORS[fault], lines[-1]), out.stderr
    assert len(lines) <= 3, out.stderr  # named once (plus when the campaign will stop), then the one last line
    log = (run_dir / "campaign.log").read_text()
    named = re.search(r"model fake-model at \S+ (has not answered|is failing)", log)
    assert named and "is resting" not in log[:named.start()]  # named before llm.rest_after=3 requests had failed
