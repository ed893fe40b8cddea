"""A worker lost mid-evaluation is not the candidate's fault: the evaluation runs again elsewhere, at most
three times in all, and a replacement that cannot be placed is given up instead of waited for."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from evolve.config import SandboxConfig
from evolve.errors import EvolveError
from evolve.evaluation.ray_pool import EvaluationPool
from evolve.program import NODE_METRIC
from tests.e2e.faulty import Crashing

pytestmark = pytest.mark.e2e

GOOD = "def solve(n):\n    return []\n"


@pytest.fixture
def crashing(circle_problem):
    """circle_packing scored by `faulty.Crashing`, which kills its worker on marked candidates."""
    return dataclasses.replace(circle_problem, evaluator="tests.e2e.faulty:Crashing")


def _run(pool: EvaluationPool, work):
    """Wait for the pool, await `work()`, shut the pool down."""

    async def main():
        await pool.ready()
        return await work()

    try:
        return asyncio.run(main())
    finally:
        pool.shutdown()


def test_an_evaluation_lost_with_its_worker_runs_again_on_another(ray_address, crashing, tmp_path, caplog):
    import ray

    pool = EvaluationPool(crashing, SandboxConfig(), num_workers=2)
    code = f"{GOOD}{Crashing.DIE_ONCE_MARK} {tmp_path / 'died'}\n"
    with caplog.at_level(logging.WARNING, logger="evolve"):
        result = _run(pool, lambda: pool.evaluate(code))
    assert (tmp_path / "died").exists()  # the first worker did die holding it
    assert not result.evaluator_error and "died" not in result.feedback, result.feedback
    assert result.metrics[NODE_METRIC] == ray.get_runtime_context().get_node_id()
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying it on another (attempt 2 of 3)" in m for m in messages), messages


def test_a_candidate_that_kills_every_worker_is_invalid_after_three_attempts(ray_address, crashing):
    pool = EvaluationPool(crashing, SandboxConfig(), num_workers=2)

    async def work():
        crashed = await pool.evaluate(f"{GOOD}{Crashing.CRASH_MARK}\n")
        return crashed, await pool.evaluate(GOOD)

    crashed, after = _run(pool, work)
    assert not crashed.valid and not crashed.evaluator_error
    assert crashed.feedback.startswith("the evaluation worker died on each of 3 attempts"), crashed.feedback
    assert "died" not in after.feedback and not after.evaluator_error  # the replacements took over


def test_a_replacement_that_cannot_be_placed_is_given_up_not_waited_for(ray_address, crashing, tmp_path, caplog):
    pool = EvaluationPool(crashing, SandboxConfig(), num_workers=2)

    async def work():
        pool.worker_cpus = 10_000  # from now on no node has room for a replacement, as when nodes are gone
        pool.ready_timeout = 3.0  # (the first workers had all the time they needed)
        survived = await pool.evaluate(f"{GOOD}{Crashing.DIE_ONCE_MARK} {tmp_path / 'died'}\n")
        while len(pool._actors) > 1:  # noqa: ASYNC110 (the pool's state, no event: the replacement is being given up)
            await asyncio.sleep(0.2)
        with pytest.raises(EvolveError, match="every evaluation worker is gone"):
            await pool.evaluate(f"{GOOD}{Crashing.CRASH_MARK}\n")  # kills the last worker
        return survived

    with caplog.at_level(logging.WARNING, logger="evolve"):
        survived = _run(pool, work)
    assert "died" not in survived.feedback and not survived.evaluator_error
    given_up = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert given_up[0].startswith("a replacement evaluation worker was given up: it was not placed within "
                                  "ray.ready_timeout=3 s"), given_up
    assert given_up[-1].endswith("going on with 0")
