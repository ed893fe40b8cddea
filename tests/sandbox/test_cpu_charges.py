"""No verdict reads the clock: a session's import, its calls and what it runs between them are charged in
CPU time measured outside the sandbox; wall clock only kills, at KILL_MULTIPLE times a CPU budget. Both
backends (the same fork-server session code), and the /proc fallback where a session has no cgroup."""

from __future__ import annotations

import time

import pytest

from evaluators import CallBudget, OverBudget
from evolve.config import SandboxConfig
from evolve.evaluation.sandboxing import make_sandbox
from sandboxes import KILL_MULTIPLE, CandidateError, CandidateTimeout, ProcessSandbox, SandboxLimits
from tests.sandbox.docker_engine import docker_sandbox

LIMITS = SandboxLimits(wall_seconds=600, call_timeout=30, cpu_seconds=30, memory_mb=512, max_processes=32)
BURN = """
import time
def burn(seconds):
    spent = time.process_time()
    while time.process_time() - spent < seconds:
        pass
"""
AT_IMPORT = BURN + "burn({seconds})\ndef f(x):\n    return x\n"
THREAD_BETWEEN_CALLS = BURN + """
import threading
def start(seconds):
    threading.Thread(target=burn, args=(seconds,), daemon=True).start()
    return 0
def f(x):
    return x
"""
CHILD_PROCESS = BURN + """
import os
def start(seconds):
    if os.fork() == 0:  # a child nobody waits for: it is in the tree, not in its parent's counts
        burn(seconds)
        os._exit(0)
    return 0
"""


@pytest.fixture(scope="module", params=["process", "docker", "process-without-cgroup"])
def sandbox(request):
    if request.param == "process":
        made = make_sandbox(SandboxConfig())
    elif request.param == "docker":
        made = docker_sandbox()
    else:
        made = ProcessSandbox(cgroups=False)
    yield made
    made.close()


def _wait_for_cpu(session, seconds: float) -> float:
    """The session's CPU reading once it passed `seconds` (a loaded machine only makes this take longer)."""
    deadline = time.monotonic() + 300
    while (used := session.cpu_seconds() or 0.0) < seconds and time.monotonic() < deadline:
        time.sleep(0.05)
    return used


def test_the_import_is_charged_to_the_first_call_and_the_setup_is_not(sandbox):
    with sandbox.session(AT_IMPORT.format(seconds=0.6), LIMITS) as session:
        assert session.cpu_charge() > 0.5  # the import's CPU, after the load
        budget = CallBudget(session, seconds=0.1)
        assert budget.call("f", 1) == 1 and budget.spent < 0.1  # charged since the last charge only
    with sandbox.session(AT_IMPORT.format(seconds=0.6), LIMITS) as session:  # over before the call starts
        with pytest.raises(OverBudget, match=r"1 calls used 0\.[5-9]\d s of CPU time, over the budget of 0\.30 s"):
            CallBudget(session, seconds=0.3).call("f", 1)
    with sandbox.session(AT_IMPORT.format(seconds=0), LIMITS) as session:
        assert session.cpu_charge() < 0.1  # forking and locking down the session is not the candidate's


def test_loading_is_killed_on_cpu_not_on_the_clock(sandbox):
    limits = SandboxLimits(wall_seconds=600, call_timeout=0.5, cpu_seconds=30, memory_mb=512, max_processes=32)
    with pytest.raises(CandidateTimeout, match=r"s of CPU loading the program \(its import\), over call_timeout=0.5s"):
        with sandbox.session(AT_IMPORT.format(seconds=60), limits):
            pass
    sleeper = "import time\ntime.sleep(2)\ndef f(x):\n    return x\n"  # 4 times the budget, asleep: not charged
    with sandbox.session(sleeper, SandboxLimits(wall_seconds=600, call_timeout=0.5)) as session:
        assert session.call("f", 3) == 3
    assert KILL_MULTIPLE >= 20


def test_a_thread_left_running_between_calls_is_charged(sandbox):
    with sandbox.session(THREAD_BETWEEN_CALLS, LIMITS) as session:
        budget = CallBudget(session, seconds=0.5)
        budget.call("start", 0.8)  # returns at once; its thread computes on
        _wait_for_cpu(session, 0.7)
        with pytest.raises(OverBudget, match=r"2 calls used 0\.[7-9]\d s of CPU time, over the budget of 0\.50 s"):
            budget.call("f", 1)


def test_a_call_over_its_budget_ends_on_cpu_not_at_the_wall_clock_kill(sandbox):
    with sandbox.session(THREAD_BETWEEN_CALLS, LIMITS) as session:
        budget = CallBudget(session, seconds=0.5)
        with pytest.raises(OverBudget, match=r"3 calls used 0\.[5-9]\d s of CPU time, over the budget of 0\.50 s"):
            for _ in range(3):
                budget.call("burn", 0.2)  # the third ends on its CPU, at the latest when it returns
    with sandbox.session(BURN, LIMITS) as session:
        budget = CallBudget(session, seconds=0.3)
        with pytest.raises(OverBudget, match=r"1 calls used 0\.\d\d s of CPU time, over the budget of 0\.30 s"):
            budget.call("burn", 60, timeout=3600)  # an hour of wall clock: never reached
        with pytest.raises(CandidateError, match="session is over"):
            session.call("f", 1)


def test_child_processes_are_charged_to_the_session(sandbox):
    limits = SandboxLimits(wall_seconds=600, call_timeout=30, cpu_seconds=1, memory_mb=512, max_processes=32)
    with sandbox.session(CHILD_PROCESS, limits) as session:
        session.call("start", 0.7)
        session.call("start", 0.7)  # each under RLIMIT_CPU (1 s a process), together over the session's 1 s
        assert _wait_for_cpu(session, 1.2) > 1  # read from its cgroup, or the process tree
        with pytest.raises(CandidateTimeout, match=r"s of CPU in its session, over cpu_seconds=1"):
            session.call("start", 0)
