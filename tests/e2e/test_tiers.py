"""`llm=tiers` against the fake OpenAI server: a cheap and a strong model name with their prices, escalation
after proposals without a new best, stepping down after one, and the per-model figures in `evolve status`."""

from __future__ import annotations

import itertools
import re

import pytest
from rich.console import Console

from evolve.cli.status_view import render
from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, ModelConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.observe.status import read_status
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer

pytestmark = pytest.mark.e2e


def _steps(request, steps):
    """A SEARCH/REPLACE edit setting `refine`'s steps of the parent in `request` to `steps`."""
    user = request["messages"][1]["content"]
    line = re.search(r"^def refine\(centers, steps=(\d+).*\n", user, re.MULTILINE)
    new = re.sub(r"steps=\d+", f"steps={steps}", line.group(0))
    return f"More steps.\n<<<<<<< SEARCH\n{line.group(0)}=======\n{new}>>>>>>> REPLACE\n"


def test_tiers_escalate_without_a_new_best_and_step_down_after_one(ray_address, circle_problem, tmp_path):
    more = itertools.count(1)

    def responder(request):  # the cheap model never finds an edit; the strong one adds steps each time
        if request["model"] == "cheap-model":
            return "I would not change anything."
        return _steps(request, 300 + 40 * next(more))

    with FakeOpenAIServer(responder) as server:
        models = [ModelConfig(model="cheap-model", base_url=server.base_url, price_input_per_million=0.15,
                              price_output_per_million=0.6, max_retries=0),
                  ModelConfig(model="strong-model", base_url=server.base_url, price_input_per_million=2.5,
                              price_output_per_million=10.0, max_retries=0)]
        config = Config(problem=circle_problem, seed=0, progress="off",
                        llm=LLMConfig(kind="tiers", models=models, escalate_after=3, concurrency=1),
                        database=DatabaseConfig(islands=1), ray=RayConfig(num_workers=1, start_after=1e9),
                        budget=BudgetConfig(iterations=16))
        Campaign(config, tmp_path).run()
        asked = [r["model"] for r in server.requests]
    assert asked[:4] == ["cheap-model"] * 3 + ["strong-model"], asked  # escalated after 3 without a new best
    runs = [(model, len(list(group))) for model, group in itertools.groupby(asked)]
    assert len(runs) >= 3, asked  # stepped down after a new best, and escalated again
    assert all(n >= 3 for model, n in runs[:-1] if model == "cheap-model"), asked
    with ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", f"circle_packing/{tmp_path.name}") as db:
        programs = [p for p in db.programs() if p.iteration > 0]
        spend = db.spend()
    assert all(p.choice.startswith("tiers: tier") for p in programs)
    bests = spend["strong-model"]["new_bests"]
    assert bests >= 1 and spend["cheap-model"]["new_bests"] == 0
    console = Console(width=240, record=True)
    console.print(render(read_status(tmp_path)))
    text = console.export_text()
    row = next(line for line in text.splitlines() if "strong-model" in line and "$" not in line
               and len(re.findall(r"\d+\.\d{4}", line)) >= 3)
    cells = [c.strip() for c in re.split(r"[│┃]", row) if c.strip()]
    strong = spend["strong-model"]
    assert cells[1] == str(strong["calls"]) and cells[5] == f"{strong['cost']:.4f}"
    assert cells[7] == str(bests) and cells[9] == f"{strong['cost'] / bests:.4f}", row
