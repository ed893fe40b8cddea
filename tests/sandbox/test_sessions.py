"""Sessions on a shared machine: one session's fork bomb never starves another, CPU time is measured
outside the sandbox, and the evaluator's own time is never charged to the candidate. Both backends."""

from __future__ import annotations

import os
import threading
import time

import pytest

from evaluators import Evaluator, Score, evaluate_program
from evolve.config import SandboxConfig
from evolve.evaluation.sandboxing import make_sandbox
from evolve.testing.attacks import ATTACKS
from sandboxes import SandboxLimits
from sandboxes.cgroups import CgroupSupport
from tests.sandbox.docker_engine import docker_sandbox

LIMITS = SandboxLimits(wall_seconds=10, call_timeout=5, cpu_seconds=8, memory_mb=512, max_processes=32,
                       file_size_mb=8, open_files=64)
THREADED = """
import threading
def solve(x):
    out = []
    workers = [threading.Thread(target=lambda: out.append(1)) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return 2 * x if len(out) == 8 else -1
"""
BUSY = """
def spin(n):
    s = 0
    for i in range(n):
        s += i
    return s
def nap(seconds):
    import time
    time.sleep(seconds)
    return 0
"""


def _backend(kind: str):
    return make_sandbox(SandboxConfig()) if kind == "process" else docker_sandbox()


@pytest.fixture(scope="module", params=["process", "docker"])
def kind(request):
    return request.param


class Threaded(Evaluator):
    def evaluate(self, candidate):
        got = candidate.call("solve", 21, timeout=5)
        return Score(value=1.0) if got == 42 else Score.invalid(f"got {got!r}")


def test_a_fork_bomb_never_starves_a_neighbour(kind):
    """Two workers: one runs a fork bomb while the other's threaded candidate must succeed every time."""
    bomb = next(a for a in ATTACKS if a.name == "fork_bomb").source
    bomber, honest = _backend(kind), _backend(kind)
    try:
        stop = threading.Event()

        def bombs():
            while not stop.is_set():
                evaluate_program(Threaded(), bomber, bomb, LIMITS)

        thread = threading.Thread(target=bombs)
        thread.start()
        try:
            time.sleep(1.0)  # let the first bomb fill its session
            results = [evaluate_program(Threaded(), honest, THREADED, LIMITS) for _ in range(5)]
        finally:
            stop.set()
            thread.join()
        assert [r.valid for r in results] == [True] * 5, [r.feedback[:200] for r in results]
    finally:
        bomber.close()
        honest.close()


def test_cpu_time_is_measured_outside_and_ignores_sleep(kind):
    sandbox = _backend(kind)
    try:
        with sandbox.session(BUSY, LIMITS) as session:
            start = session.cpu_seconds()
            assert start is not None
            session.call("nap", 0.5)
            napped = session.cpu_seconds() - start
            session.call("spin", 5_000_000)
            spun = session.cpu_seconds() - start - napped
        assert napped < 0.2, f"a 0.5 s sleep was charged {napped:.3f} s of CPU"
        assert spun > 0.05 and spun > 3 * napped, (napped, spun)
    finally:
        sandbox.close()


class Slow(Evaluator):
    """Thinks for longer than the whole session's wall limit between two quick calls."""

    def evaluate(self, candidate):
        first = candidate.call("spin", 10)
        time.sleep(1.5)
        second = candidate.call("spin", 10)
        return Score(value=float(first + second))


def test_the_evaluators_own_time_is_not_the_candidates(kind):
    sandbox = _backend(kind)
    try:
        limits = SandboxLimits(wall_seconds=1.0, call_timeout=0.9)
        result = evaluate_program(Slow(), sandbox, BUSY, limits)
        assert result.valid, result.feedback
        sleeper = "def spin(n):\n    import time\n    time.sleep(0.6)\n    return 0\n"
        over = evaluate_program(Slow(), sandbox, sleeper, limits)  # 2 x 0.6 s of its own: over 1.0 s
        assert not over.valid and "session wall_seconds" in over.feedback, over.feedback
    finally:
        sandbox.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="session cgroups need root")
def test_each_session_gets_a_cgroup_and_none_is_left_behind():
    support = CgroupSupport.probe()
    assert support.version in (1, 2), support.reason  # this machine has one or the other; both are code paths

    def sessions() -> set:
        return {p for parent in support.parents.values() for p in parent.glob(f"s-{os.getpid()}-*")}

    # an earlier test's campaign may still be closing its local slots on a background thread: not ours
    earlier = sessions()
    sandbox = make_sandbox(SandboxConfig())
    try:
        for _ in range(3):
            assert evaluate_program(Threaded(), sandbox, THREADED, LIMITS).valid
        assert sandbox.layers()["cgroup"].startswith(f"cgroup v{support.version}")
    finally:
        sandbox.close()
    assert sorted(sessions() - earlier) == []


WRITER = """
import os
def leave(name):
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), name), "w") as f:
        f.write("seen")
    return os.getpid()
def look(name):
    return os.path.exists(os.path.join(os.environ.get("TMPDIR", "/tmp"), name))
"""


def test_the_next_session_is_set_up_while_one_runs_and_is_fresh():
    """Process backend (in a container, a closing session's leader would kill a spare: none is made)."""
    sandbox = make_sandbox(SandboxConfig(kind="process"))
    try:
        with sandbox.session(WRITER, LIMITS) as first:
            first.call("leave", "trace")
            while sandbox._preparing is not None:
                time.sleep(0.01)
            [(made_for, spare)] = sandbox._spare
            assert made_for == LIMITS and spare.alive
        with sandbox.session(WRITER, LIMITS) as second:
            assert second is spare  # the one set up ahead, not a new fork
            assert second.call("look", "trace") is False  # and nothing of the first is there
        other = SandboxLimits(**{**LIMITS.__dict__, "memory_mb": 256})
        while sandbox._preparing is not None:
            time.sleep(0.01)
        [(_, kept)] = sandbox._spare
        with sandbox.session(WRITER, other) as third:  # other limits (a later stage): a fresh one, and one
            assert third is not kept and kept.alive    # kept for each limits
            assert third.call("look", "trace") is False
        assert sandbox.spare_leader() is not None and len(sandbox._spare) == 2
    finally:
        sandbox.close()
    assert sandbox._spare == [] and sandbox._preparing is None and not kept.alive
