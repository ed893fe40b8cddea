"""Ray off the critical path: programs are scored in this process while Ray starts, then on Ray's workers.

The Ray side is the test session's real instance; a gate holds its pool back so the test decides when
Ray "comes up".
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import pytest

from evolve.config import SandboxConfig
from evolve.errors import ConfigError
from evolve.evaluation.handover import HandoverPool
from evolve.evaluation.local_pool import LocalPool
from evolve.evaluation.ray_pool import EvaluationPool
from evolve.problems import read_initial_program
from evolve.program import NODE_METRIC
from tests.e2e.faulty import Crashing

pytestmark = pytest.mark.e2e


def _initial(problem) -> str:
    return read_initial_program(problem)


class _Gate:
    """A `start` for HandoverPool that builds a real Ray pool once the test opens the gate."""

    def __init__(self, problem, fail: Exception | None = None) -> None:
        self.problem, self.fail = problem, fail
        self.open = threading.Event()
        self.built: list[EvaluationPool] = []

    def __call__(self) -> EvaluationPool:
        self.open.wait(120)
        if self.fail is not None:
            raise self.fail
        pool = EvaluationPool(self.problem, SandboxConfig(), num_workers=1, worker_cpus=0.5)
        pool.wait_ready()
        self.built.append(pool)
        return pool


def test_programs_are_scored_locally_until_ray_is_up_then_on_ray(ray_address, circle_problem):
    gate = _Gate(circle_problem)
    local = LocalPool(circle_problem, SandboxConfig(), size=1)
    pool = HandoverPool(local, gate)
    code = _initial(circle_problem)

    async def run():
        await pool.ready()
        before = await pool.evaluate(code)
        assert not pool.remote_ready
        # three callers queue for the one local slot; Ray comes up while they wait: none is stranded
        waiting = [asyncio.create_task(pool.evaluate(code)) for _ in range(3)]
        await asyncio.sleep(0)
        gate.open.set()
        assert await asyncio.to_thread(pool.wait, 120)
        after = await asyncio.gather(*waiting)
        return before, after

    try:
        before, after = asyncio.run(asyncio.wait_for(run(), 300))
        assert pool.remote_ready and pool.size == 1
        assert before.valid and before.score is not None
        assert [r.score for r in after] == [before.score] * 3  # the same program, the same score, either side
        deadline = time.monotonic() + 60  # the retired slots close on a background thread
        while any(slot.sandbox.server_pid is not None for slot in local._slots) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert local._slots and all(slot.sandbox.server_pid is None for slot in local._slots)  # fork servers gone
    finally:
        pool.shutdown()


def test_ray_that_cannot_start_is_one_line_and_the_local_slots_go_on(circle_problem, caplog):
    attempts: list[float] = []

    def start() -> EvaluationPool:
        attempts.append(time.monotonic())
        raise RuntimeError("The current node timed out\nduring startup")  # what a loaded machine gives Ray

    pool = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, retry_after=(0.5, 0.5))
    try:
        with caplog.at_level(logging.INFO, logger="evolve"):
            assert pool.wait(60)
            assert asyncio.run(pool.evaluate(_initial(circle_problem))).valid  # the local slot goes on
            deadline = time.monotonic() + 60
            while len(attempts) < 3 and time.monotonic() < deadline:  # a cause that may pass: tried again
                time.sleep(0.1)
            time.sleep(1.0)
    finally:
        pool.shutdown()
    assert len(attempts) == 3 and not pool.remote_ready  # the first try and the two retries, no more
    lines = [r.getMessage() for r in caplog.records if r.name == "evolve.ray"]
    cause = "Ray did not start: RuntimeError: The current node timed out during startup"
    assert lines == [f"{cause}; evaluations go on in this process's 1 slot; Ray is tried again in 0.5 s"] * 2 + [
        f"{cause}; evaluations go on in this process's 1 slot; Ray is not tried again in this campaign"], lines
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "evolve.ray")


def test_a_mismatch_with_the_cluster_is_not_tried_again(circle_problem, caplog):
    attempts: list[float] = []

    def start() -> EvaluationPool:
        attempts.append(time.monotonic())
        raise RuntimeError("Version mismatch: The cluster was started with: Ray: 2.9.0")

    pool = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, retry_after=(0.1,))
    try:
        with caplog.at_level(logging.INFO, logger="evolve"):
            assert pool.wait(60)
            time.sleep(1.0)
            assert asyncio.run(pool.evaluate(_initial(circle_problem))).valid
    finally:
        pool.shutdown()
    assert len(attempts) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "evolve.ray"] == [
        ("Ray did not start: RuntimeError: Version mismatch: The cluster was started with: Ray: 2.9.0; evaluations go "
         "on in this process's 1 slot")]


def test_a_pool_that_comes_up_after_the_campaign_ended_is_shut_down(ray_address, circle_problem):
    import ray

    gate = _Gate(circle_problem)
    pool = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), gate)
    pool.shutdown()
    gate.open.set()
    assert pool.wait(120)
    assert not pool.remote_ready
    actor = gate.built[0]._actors
    assert actor == []  # shut down by the start thread itself
    assert ray.is_initialized()


def _recorded_start() -> tuple[list[float], Callable[[], EvaluationPool]]:
    """A `start` that records when it was called, and the list it records in."""
    started: list[float] = []

    def start() -> EvaluationPool:
        started.append(time.monotonic())
        raise RuntimeError("not needed here")  # what Ray's start would raise: enough to see when it began

    return started, start


def test_a_delayed_start_begins_after_its_delay_and_never_for_a_campaign_that_ended_first(circle_problem):
    started, start = _recorded_start()
    began = time.monotonic()
    short = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, delay=60.0)
    code = _initial(circle_problem)
    try:
        assert asyncio.run(short.evaluate(code)).valid  # the local slot works meanwhile
    finally:
        short.shutdown()  # the campaign ends within its delay
    assert short.wait(30) and started == []  # Ray was never started
    delayed = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, delay=0.5)
    try:
        assert delayed.wait(60)
        assert len(started) == 1 and started[0] - began >= 0.5
    finally:
        delayed.shutdown()


def test_a_gated_start_waits_for_the_campaigns_first_iteration(circle_problem):
    started, start = _recorded_start()
    never = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, gated=True)
    assert not never.wait(1.0)  # no delay, but the campaign has not said its first iteration is done
    never.shutdown()  # it ended in its set-up
    assert never.wait(30) and started == []
    gated = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, gated=True)
    try:
        assert not gated.wait(1.0) and started == []
        begun = time.monotonic()
        gated.begin()
        assert gated.wait(30) and len(started) == 1 and started[0] >= begun
    finally:
        gated.shutdown()


def test_ray_starts_only_while_the_campaign_is_expected_to_outlast_min_eta(circle_problem):
    started, start = _recorded_start()
    # delay: `watch` comes before the start thread first asks (a campaign's comes seconds before)
    ending = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, delay=0.3, min_eta=60.0)
    ending.watch(lambda: 10.0)  # the campaign ends in 10 s: Ray's start-up would not pay off
    try:
        assert not ending.wait(1.5)
        assert asyncio.run(ending.evaluate(_initial(circle_problem))).valid  # the local slot works meanwhile
    finally:
        ending.shutdown()
    assert ending.wait(30) and started == []
    left = [10.0]  # the pace slows (a slower model, say): the campaign now has long to go, so Ray starts
    slowing = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, delay=0.3, min_eta=60.0)
    slowing.watch(lambda: left[0])
    unknown = HandoverPool(LocalPool(circle_problem, SandboxConfig(), size=1), start, delay=0.3, min_eta=60.0)
    unknown.watch(lambda: None)  # no pace yet (no iteration finished): counted as long
    try:
        assert unknown.wait(30) and len(started) == 1
        assert not slowing.wait(1.5) and len(started) == 1
        left[0] = 600.0
        assert slowing.wait(30) and len(started) == 2
    finally:
        slowing.shutdown()
        unknown.shutdown()


def test_a_broken_sandbox_setting_is_one_line_from_the_local_slot(circle_problem):
    gate = _Gate(circle_problem)
    pool = HandoverPool(LocalPool(circle_problem, SandboxConfig(interpreter="/no/such/python"), size=1), gate)
    try:
        with pytest.raises(ConfigError, match=r"^sandbox\.interpreter='/no/such/python' is not known; use host"):
            asyncio.run(pool.ready())
    finally:
        pool.shutdown()
        gate.open.set()


def test_a_ray_lost_mid_evaluation_is_scored_locally_then_ray_is_tried_again(ray_address, circle_problem, tmp_path,
                                                                              caplog):
    crashing = dataclasses.replace(circle_problem, evaluator="tests.e2e.faulty:Crashing")
    gate = _Gate(crashing)
    gate.open.set()
    pool = HandoverPool(LocalPool(crashing, SandboxConfig(), size=1), gate, retry_after=(0.5,))
    dies = f"{_initial(circle_problem)}\n{Crashing.DIE_ONCE_MARK} {tmp_path / 'died'}\n"

    async def run():
        await pool.ready()
        assert await asyncio.to_thread(pool.wait, 120) and pool.remote_ready
        first = gate.built[0]
        first.worker_cpus, first.ready_timeout = 10_000, 3.0  # no node has room for a replacement: Ray is lost
        result = await pool.evaluate(dies)  # kills Ray's only worker; scored again in a local slot
        assert not pool.remote_ready
        deadline = time.monotonic() + 120
        while not pool.remote_ready and time.monotonic() < deadline:  # noqa: ASYNC110 (set by the start thread)
            await asyncio.sleep(0.2)
        return result, await pool.evaluate(_initial(circle_problem))

    try:
        with caplog.at_level(logging.INFO, logger="evolve"):
            result, after = asyncio.run(asyncio.wait_for(run(), 300))
    finally:
        pool.shutdown()
    assert (tmp_path / "died").exists()  # Ray's worker did die holding it
    assert result.valid and NODE_METRIC not in result.metrics  # one result, from the local slot
    assert after.valid and after.metrics[NODE_METRIC]  # Ray's second pool scored the next one
    assert len(gate.built) == 2 and gate.built[0]._actors == []
    lines = [r.getMessage() for r in caplog.records if r.name == "evolve.ray"]
    assert lines[1].startswith("Ray was lost: every evaluation worker is gone and none could be placed again"), lines
    assert lines[1].endswith("evaluations go on in this process's 1 slot; Ray is tried again in 0.5 s"), lines
    assert lines[0].startswith("Ray's 1 evaluation workers are up") and lines[2].startswith("Ray's 1 evaluation"), lines
