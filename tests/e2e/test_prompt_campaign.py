"""A campaign's prompts carry what matters: the labelled inspirations, the lineage's attempts and the
parent's cell, the edit format of their mode, and token counts calibrated on the model's own usage."""

from __future__ import annotations

import re

import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, ModelConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.testing import FakeOpenAIServer

pytestmark = pytest.mark.e2e


def _steps_edit(request, delta):
    user = request["messages"][1]["content"]
    line = re.search(r"^def refine\(centers, steps=(\d+).*\n", user, re.MULTILINE)
    new = line.group(0).replace(f"steps={line.group(1)}", f"steps={max(10, int(line.group(1)) + delta)}")
    return (f"Change the number of steps to {new.strip()}.\n<<<<<<< SEARCH\n{line.group(0)}=======\n{new}"
            ">>>>>>> REPLACE\n")


def test_a_campaigns_prompts_carry_labels_attempts_and_the_cell(circle_problem, tmp_path):
    counter = iter(range(1000))
    with FakeOpenAIServer(lambda r: _steps_edit(r, 7 + 3 * next(counter))) as server:
        model = ModelConfig(model="m", base_url=server.base_url, max_retries=0, max_tokens=512,
                            context_tokens=100_000)
        config = Config(problem=circle_problem, seed=0, progress="off",
                        llm=LLMConfig(kind="ensemble", models=[model], concurrency=1),
                        database=DatabaseConfig(islands=1), ray=RayConfig(num_workers=1, start_after=1e9),
                        budget=BudgetConfig(iterations=12))
        config.prompt.full = config.prompt.crossover = 0.0
        Campaign(config, tmp_path).run()
        requests = list(server.requests)
    systems = [r["messages"][0]["content"] for r in requests]
    users = [r["messages"][1]["content"] for r in requests]
    assert all("An example reply" in s and "rewrite" not in s.lower() for s in systems)
    assert any(re.search(r"# Inspiration 1: (one of this island's best|a different approach)", u) for u in users)
    assert any("# Recent attempts on this program's line" in u and "-> score" in u for u in users)
    assert all("MAP-Elites cell: [" in u for u in users) and not any('"smoke.' in u for u in users)
