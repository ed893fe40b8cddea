"""Campaigns with `llm.edit_format` against the fake server through the real openai client: structured edits
end to end, `auto` finding out what the endpoint takes, and a run-time refusal falling back once."""

from __future__ import annotations

import json
import logging
import re

import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.program import ProgramStatus
from evolve.proposals.structured import edit_schema
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer
from evolve.testing.fake_openai import STRUCTURED

pytestmark = pytest.mark.e2e

_STEPS = re.compile(r"^def refine\(centers, steps=(\d+).*$", re.MULTILINE)


def _steps(request) -> tuple[str, str]:
    """The parent's `def refine(...)` line and the same line with more steps."""
    line = _STEPS.search(request["messages"][1]["content"])
    return line.group(0), line.group(0).replace(f"steps={line.group(1)}", f"steps={int(line.group(1)) + 25}")


def _structured(request) -> str:
    old, new = _steps(request)
    return json.dumps({"edits": [{"block": 1, "first_line": old, "last_line": old, "replacement": new,
                                  "rationale": "more steps"}]})


def _diff(request) -> str:
    old, new = _steps(request)
    return f"More steps.\n<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n"


def _config(problem, url, iterations=6, **llm) -> Config:
    return Config(problem=problem, seed=0, progress="off",
                  llm=LLMConfig(kind="openai", model="fake-model", base_url=url, api_key_env=None, concurrency=1,
                                max_retries=0, **llm),
                  database=DatabaseConfig(islands=1), ray=RayConfig(num_workers=1, start_after=1e9),
                  budget=BudgetConfig(iterations=iterations))


def _programs(tmp_path):
    with ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", f"circle_packing/{tmp_path.name}") as db:
        programs = [p for p in db.programs() if p.iteration > 0]
        return programs, db.calls(), {p.parent_id: db.get(p.parent_id).code for p in programs}


def test_a_structured_campaign_sends_each_parents_schema_and_applies_the_json_edits(circle_problem,
                                                                                     tmp_path):
    with FakeOpenAIServer(_structured, schema_shapes=STRUCTURED) as server:
        result = Campaign(_config(circle_problem, server.base_url, edit_format="structured"), tmp_path).run()
    programs, calls, codes = _programs(tmp_path)
    assert result.iterations == len(programs) == len(server.requests) == 6
    assert result.best_score > result.initial_score
    for request, program, call in zip(server.requests, programs, calls):
        assert request["response_format"]["json_schema"]["schema"] == edit_schema(codes[program.parent_id])
        assert "Reply with one JSON object, not SEARCH/REPLACE" in request["messages"][0]["content"]
        assert request["messages"][1]["content"].rstrip().endswith("as a JSON object of edits.")
        assert program.status not in (ProgramStatus.EDIT_FAILED, ProgramStatus.PROPOSAL_FAILED), program.error
        assert call["response"] == program.proposal and json.loads(program.proposal)["edits"]  # the raw reply
        assert call["messages"] == request["messages"]  # what was recorded is what was sent


def test_a_schema_valid_edit_that_does_not_apply_is_an_edit_failure_with_its_reason(circle_problem,
                                                                                      tmp_path):
    def unchanged(request):
        old, _ = _steps(request)
        return json.dumps({"edits": [{"block": 1, "first_line": old, "last_line": old, "replacement": old,
                                      "rationale": "none"}]})

    with FakeOpenAIServer(unchanged, schema_shapes=STRUCTURED) as server:
        Campaign(_config(circle_problem, server.base_url, iterations=3, edit_format="structured"), tmp_path).run()
    programs, *_ = _programs(tmp_path)
    assert [p.status for p in programs] == [ProgramStatus.EDIT_FAILED] * 3
    assert all(p.error == "the edit leaves the program unchanged" for p in programs)


def test_auto_falls_back_to_text_where_the_endpoint_takes_no_schema(circle_problem, tmp_path, caplog):
    with FakeOpenAIServer(_diff, schema_shapes=()) as server, caplog.at_level(logging.INFO, logger="evolve"):
        result = Campaign(_config(circle_problem, server.base_url, iterations=4), tmp_path).run()
    programs, *_ = _programs(tmp_path)
    assert result.best_score > result.initial_score
    assert len(server.probes) == 2 and not server.refused  # the probe's two shapes; no proposal carried a schema
    assert all("response_format" not in r for r in server.requests) and len(server.requests) == 4
    assert all("JSON" not in r["messages"][0]["content"] + r["messages"][1]["content"] for r in server.requests)
    assert all(p.status is not ProgramStatus.EDIT_FAILED for p in programs)
    log = caplog.text
    assert "does not honour a JSON schema (HTTP 400): SEARCH/REPLACE and rewrites as text" in log


def test_auto_uses_structured_edits_where_the_endpoint_honours_a_schema(circle_problem, tmp_path):
    with FakeOpenAIServer(_structured, schema_shapes=("json_object",)) as server:
        Campaign(_config(circle_problem, server.base_url, iterations=3), tmp_path).run()
    programs, *_ = _programs(tmp_path)
    # the probe found llama-cpp-python's shape; the model's first request tries OpenAI's once more, then keeps it
    assert [r["response_format"]["type"] for r in server.probes] == ["json_schema", "json_object"]
    assert [r["response_format"]["type"] for r in server.requests] == ["json_object"] * 3
    assert all(p.status is not ProgramStatus.EDIT_FAILED for p in programs)


def test_structured_edits_caps_the_edits_a_reply_may_hold(circle_problem, tmp_path):
    with FakeOpenAIServer(_structured, schema_shapes=STRUCTURED) as server:
        Campaign(_config(circle_problem, server.base_url, iterations=2, edit_format="structured",
                         structured_edits=1), tmp_path).run()
    assert [r["response_format"]["json_schema"]["schema"]["properties"]["edits"]["maxItems"]
            for r in server.requests] == [1, 1]


def test_a_run_time_refusal_falls_back_once_and_the_campaign_goes_on(circle_problem, tmp_path, caplog):
    # the prompts asked for JSON; a model no longer constrained may answer in text, which is read as ever
    with FakeOpenAIServer(_diff, schema_shapes=()) as server, caplog.at_level(logging.INFO, logger="evolve"):
        config = _config(circle_problem, server.base_url, iterations=4, edit_format="structured", probe_timeout=None)
        result = Campaign(config, tmp_path).run()
    programs, *_ = _programs(tmp_path)
    assert result.iterations == 4 and len(server.refused) == 2 and len(server.requests) == 4
    assert all("response_format" not in r for r in server.requests)
    assert all(p.status is not ProgramStatus.EDIT_FAILED for p in programs)
    log = caplog.text
    assert log.count("rejects a JSON schema in response_format") == 1
