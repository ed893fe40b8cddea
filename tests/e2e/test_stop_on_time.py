"""`budget.wall_seconds` is overrun by one evaluation's time at most: the stop does not wait for evaluations or
validations that outlast it (a problem whose evaluations block until the test releases them)."""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest

from evolve.config import BudgetConfig, Config, DatabaseConfig, LLMConfig, SandboxConfig
from evolve.engine.campaign import Campaign
from evolve.evaluation.local_pool import LocalPool
from evolve.storage.database import ProgramDatabase
from tests.e2e.faulty import Stalling

pytestmark = pytest.mark.e2e


def test_the_wall_clock_stop_waits_neither_for_a_stuck_evaluation_nor_for_a_stuck_validation(circle_problem,
                                                                                             tmp_path, caplog):
    problem = dataclasses.replace(circle_problem, evaluator="tests.e2e.faulty:Stalling")
    config = Config(problem=problem, seed=0, progress="off", llm=LLMConfig(), database=DatabaseConfig(islands=1),
                    budget=BudgetConfig(iterations=1000, wall_seconds=1.0))
    pool = LocalPool(problem, SandboxConfig(), size=2)
    watchdog = threading.Timer(300, Stalling.RELEASE.set)  # a stop that waits would fail, not hang
    watchdog.start()
    try:
        with caplog.at_level(logging.INFO, logger="evolve"):
            result = Campaign(config, tmp_path, pool=pool).run()
        assert not Stalling.RELEASE.is_set()  # it stopped while both were still stuck
        stuck = 0
        while Stalling.STALLED.acquire(blocking=False):
            stuck += 1
        assert stuck == 2  # the initial program's validation on one slot, a child's evaluation on the other
    finally:
        Stalling.RELEASE.set()
        watchdog.cancel()
        pool.shutdown()
    assert result.stop_reason == "budget.wall_seconds=1 reached" and result.evaluated == 0
    assert "1 validation(s) still running" in caplog.text and "were not waited for" in caplog.text
    with ProgramDatabase(f"sqlite:///{tmp_path / 'programs.db'}", f"circle_packing/{tmp_path.name}") as db:
        assert db.initial().validation is None
