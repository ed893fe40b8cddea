"""Dollars per improvement of `llm=tiers` against the fake OpenAI server, beside the strong model alone.

Two model names on one fake endpoint, with gpt-4o-mini's and gpt-4o's prices (USD per million tokens:
0.15/0.60 and 2.50/10.0). The cheap one answers an applicable edit of circle_packing's `refine` steps one
request in three (otherwise a reply with no edit); the strong one always does, with a larger change. Both
campaigns run the same budget on the same problem and seed; the table is `evolve status`'s spend table.

    python benchmarks/tiers_spend.py [--iterations 40] [--escalate-after 4]
"""

from __future__ import annotations

import argparse
import itertools
import re
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from evolve.cli.status_view import spend_table
from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, ModelConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.problems import get_problem
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer

PRICES = {"cheap-model": (0.15, 0.60), "strong-model": (2.50, 10.0)}


def responder() -> Any:
    """The fake models: the cheap one edits one request in three, the strong one every time."""
    counts = {name: itertools.count() for name in PRICES}

    def reply(request: dict[str, Any]) -> str:
        n = next(counts[request["model"]])
        if request["model"] == "cheap-model" and n % 3:
            return "The program looks fine as it is."
        user = request["messages"][-1]["content"]
        line = re.search(r"^def refine\(centers, steps=(\d+).*\n", user, re.MULTILINE)
        if line is None:
            return "No refine() to change."
        step = 15 + 3 * n if request["model"] == "cheap-model" else 40 + 5 * n
        new = line.group(0).replace(f"steps={line.group(1)}", f"steps={int(line.group(1)) + step}")
        return f"More refinement steps.\n<<<<<<< SEARCH\n{line.group(0)}=======\n{new}>>>>>>> REPLACE\n"

    return reply


def campaign(kind: str, names: list[str], iterations: int, escalate_after: int,
             run_dir: Path) -> tuple[dict[str, Any], float]:
    """Run one campaign against a fresh fake server; return its spend per model and its best score."""
    with FakeOpenAIServer(responder()) as server:
        models = [ModelConfig(model=name, base_url=server.base_url, price_input_per_million=PRICES[name][0],
                              price_output_per_million=PRICES[name][1], max_retries=0) for name in names]
        llm = LLMConfig(kind=kind, models=models, escalate_after=escalate_after, selection="fixed", concurrency=2)
        config = Config(problem=get_problem("circle_packing"), seed=0, progress="off", llm=llm,
                        database=DatabaseConfig(islands=1), ray=RayConfig(num_workers=2, start_after=1e9),
                        budget=BudgetConfig(iterations=iterations))
        result = Campaign(config, run_dir).run()
    with ProgramDatabase(f"sqlite:///{run_dir / 'programs.db'}", f"circle_packing/{run_dir.name}") as db:
        return db.spend(), result.best_score


def main() -> None:
    """Run both campaigns and print their spend tables and totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--escalate-after", type=int, default=4)
    args = parser.parse_args()
    console = Console(width=200)
    with tempfile.TemporaryDirectory() as tmp:
        for label, kind, names in (("tiers", "tiers", ["cheap-model", "strong-model"]),
                                   ("strong only", "ensemble", ["strong-model"])):
            spend, best = campaign(kind, names, args.iterations, args.escalate_after, Path(tmp) / kind)
            console.print(spend_table(spend))
            cost = sum(m["cost"] for m in spend.values())
            improved = sum(m["improvements"] for m in spend.values())
            bests = sum(m["new_bests"] for m in spend.values())
            console.print(f"{label}: best {best:.6g}, ${cost:.4f} in all, {improved} improved parent "
                          f"(${cost / max(improved, 1):.5f} each), {bests} new bests "
                          f"(${cost / max(bests, 1):.5f} each)")


if __name__ == "__main__":
    main()
