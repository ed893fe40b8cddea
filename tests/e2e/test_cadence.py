"""Migration happens exactly on its cadence in a real campaign, whatever order iterations commit in."""

from __future__ import annotations

import logging
import re

import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, RayConfig
from evolve.engine.campaign import Campaign
from evolve.storage.database import ProgramDatabase

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("population", ["islands", "tournament"])
def test_200_iterations_at_interval_40_migrate_five_times(circle_problem, tmp_path, caplog, population):
    config = Config(problem=circle_problem, seed=1, progress="off", llm=LLMConfig(kind="offline", concurrency=4),
                    database=DatabaseConfig(islands=3, migration_interval=40, population=population),
                    ray=RayConfig(start_after=1e9),  # the local slots only: many iterations in flight, no Ray
                    budget=BudgetConfig(iterations=200))
    with caplog.at_level(logging.INFO, logger="evolve"):
        result = Campaign(config, tmp_path).run()
    assert result.iterations == 200
    due = [int(m.group(1)) for r in caplog.records if (m := re.match(r"migration at (\d+) iterations", r.getMessage()))]
    assert due == [40, 80, 120, 160, 200]  # each once, none doubled
    with ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", config.name or f"circle_packing/{tmp_path.name}",
                         read_only=True) as db:
        moves = db.migrations()
        assert (len(moves) > 0) == (population == "islands")  # a tournament has no islands to move between
        assert len(moves) == len(set(moves))
