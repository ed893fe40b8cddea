"""`Session.call_many` on the fork server: one round trip, the same checks as `call`, failures named."""

from __future__ import annotations

import pytest

from sandboxes import CandidateError, CandidateTimeout, ProcessSandbox, SandboxLimits
from sandboxes.base import Session

PROGRAM = """
import math
calls = []
def double(x):
    calls.append(x)
    return 2 * x
def count():
    return len(calls)
def picky(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x
def odd(x):
    return float("nan") if x == 2 else object() if x == 4 else x
def slow(x):
    if x == 2:
        while True:
            pass
    return x
"""


@pytest.fixture(scope="module")
def sandbox():
    return ProcessSandbox()


LIMITS = SandboxLimits(call_timeout=3, wall_seconds=60)


def test_results_match_one_call_each(sandbox):
    with sandbox.session(PROGRAM, LIMITS) as s:
        batch = s.call_many("double", [[k] for k in range(50)])
        one_by_one = Session.call_many(s, "double", [[k] for k in range(50)])
        assert batch == one_by_one == [2 * k for k in range(50)]
        assert s.call("count") == 100  # the batch ran in the same interpreter, once per argument list
        assert s.call_many("double", []) == []


def test_a_failure_in_call_k_is_named(sandbox):
    with sandbox.session(PROGRAM, LIMITS) as s:
        with pytest.raises(CandidateError, match=r"(?s)call 3 of 5 \(picky\).*three is not allowed"):
            s.call_many("picky", [[k] for k in range(5)])
        assert s.call("picky", 1) == 1  # an exception in the candidate leaves the session usable


@pytest.mark.parametrize("args, index, why", [((0, 1, 2, 3), 2, "non-finite"), ((0, 1, 3, 4, 5), 3, "type object")])
def test_each_result_must_be_plain_json(sandbox, args, index, why):
    with sandbox.session(PROGRAM, LIMITS) as s:
        with pytest.raises(CandidateError, match=rf"call {index} of {len(args)} \(odd\).*{why}"):
            s.call_many("odd", [[k] for k in args])


def test_missing_function_and_a_hang(sandbox):
    with sandbox.session(PROGRAM, LIMITS) as s:
        with pytest.raises(CandidateError, match="defines no function 'nope'"):
            s.call_many("nope", [[1]])
    with sandbox.session(PROGRAM, SandboxLimits(call_timeout=1, wall_seconds=60)) as s:
        with pytest.raises(CandidateTimeout, match=r"timeout=1s\) in call 2 of 3"):  # 1 s for each call
            s.call_many("slow", [[0], [1], [2]], timeout=1)
        with pytest.raises(CandidateError, match="session is over"):
            s.call("slow", 0)


def test_each_call_of_a_batch_has_its_own_timeout(sandbox):
    """A hang in call 2 of 100 ends the batch after about one call's timeout, as that call alone would
    have ended, not after the batch's 100 timeouts; the session is over, as after a timed-out `call`."""
    program = PROGRAM + "import time\ndef nap(x):\n    if x == 2:\n        time.sleep(3600)\n    return x\n"
    with sandbox.session(program, SandboxLimits(call_timeout=1, wall_seconds=3600)) as s:
        with pytest.raises(CandidateTimeout, match=r"timeout=1s\) in call 2 of 100 \(nap\)"):
            s.call_many("nap", [[k] for k in range(100)], timeout=1)
        with pytest.raises(CandidateError, match="session is over"):
            s.call("nap", 0)


def test_a_candidate_that_swallows_exceptions_still_times_out_per_call(sandbox):
    program = ("import time\ndef stubborn(x):\n    try:\n        time.sleep(3600)\n    except Exception:\n"
               "        return x\n    return x\n")
    with sandbox.session(program, SandboxLimits(call_timeout=1, wall_seconds=3600)) as s:
        with pytest.raises(CandidateTimeout, match=r"in call 0 of 50"):
            s.call_many("stubborn", [[k] for k in range(50)], timeout=1)


def test_a_candidate_that_disarms_the_timer_meets_the_batch_deadline(sandbox):
    program = ("import signal, time\ndef sly(x):\n    signal.setitimer(signal.ITIMER_REAL, 0)\n"
               "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    time.sleep(3600)\n    return x\n")
    with sandbox.session(program, SandboxLimits(call_timeout=1, wall_seconds=3600)) as s:
        with pytest.raises(CandidateTimeout, match=r"timeout=3s"):  # the worker's guard: 1 s per call, 3 calls
            s.call_many("sly", [[0], [1], [2]], timeout=1)
