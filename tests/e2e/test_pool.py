"""The evaluation pool fits the cluster: what cannot be placed is one line, never a silent wait."""

from __future__ import annotations

import asyncio

import pytest

from evolve.config import SandboxConfig
from evolve.errors import ConfigError
from evolve.evaluation.ray_pool import EvaluationPool

pytestmark = pytest.mark.e2e


def test_more_workers_than_cpus_is_one_line_saying_what_to_set(ray_address, circle_problem):
    import ray

    cpus = ray.cluster_resources()["CPU"]
    with pytest.raises(ConfigError, match=rf"asked for {int(cpus) + 2} evaluation workers of 1 CPU each, but "
                                          rf"the cluster has {cpus:g} CPUs; set ray.num_workers={int(cpus)}"):
        EvaluationPool(circle_problem, SandboxConfig(), num_workers=int(cpus) + 2)


def test_workers_that_reserve_half_a_cpu_run_twice_as_many(ray_address, circle_problem):
    import ray

    cpus = ray.cluster_resources()["CPU"]
    pool = EvaluationPool(circle_problem, SandboxConfig(), worker_cpus=0.5)
    try:
        assert pool.size == int(2 * cpus)

        async def check():
            await pool.ready()
            results = await asyncio.gather(*(pool.evaluate("def solve(n):\n    return []\n") for _ in range(pool.size)))
            return results

        results = asyncio.run(check())
        assert len(results) == pool.size and all(not r.evaluator_error for r in results)
    finally:
        pool.shutdown()
