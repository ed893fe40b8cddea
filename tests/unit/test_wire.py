"""The wire's cheap paths say the same as the careful ones: replies parsed without a call per number, array
arguments sent as their bytes, the CPU counter read through one descriptor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluators import CallBudget, RejectedReply
from sandboxes import CandidateError, ProcessSandbox, SandboxLimits
from sandboxes.base import Picked
from sandboxes.cgroups import CgroupSupport
from sandboxes.forkserver import _as_list, _bounded_int, _finite_float, _in_float_range, _reject_constant, parse_reply


def frame(result_text: str) -> bytes:
    return b'{"ok":true,"result":' + result_text.encode() + b',"nonce":7}'


@pytest.mark.parametrize("number", ["1e400", "-1E309", "1" + "0" * 320 + ".5", "9" * 400, "NaN", "-Infinity"])
def test_a_number_beyond_float_range_is_refused_however_it_is_written(number):
    with pytest.raises(ValueError, match=r"finite|range"):
        parse_reply(frame(f"[1.5, {number}]"), max_depth=8)


def shape(value):
    """The value with each number's type beside it, so that 2 and 2.0 differ."""
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return value, type(value).__name__


@pytest.mark.parametrize(("text", "fast"), [('[0.1, -2.5, 12345678901234567890, 3, true, null, "e"]', True),
                                            ('[[1, 2.25], {"[]": [3.0, -0.0]}, {"()": [4]}, {"k": 0.5}]', True),
                                            ('[1.0, 2.5e-07, "1e400 in a string"]', False)])
def test_the_fast_path_parses_as_the_checked_one(text, fast):
    data = frame(text)
    checked = json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int,
                         object_hook=_as_list)
    assert _in_float_range(data) == fast  # an exponent anywhere, even in a string, takes the checked path
    assert shape(parse_reply(data, max_depth=8)) == shape(checked)


def test_depth_is_still_checked_when_the_frame_has_many_brackets():
    with pytest.raises(ValueError, match="max_result_depth=4"):
        parse_reply(frame("[" * 6 + "]" * 6), max_depth=4)
    assert parse_reply(frame("[" + ",".join(["[1]"] * 50) + "]"), max_depth=4)["result"] == [[1]] * 50


@pytest.fixture(scope="module")
def sandbox():
    box = ProcessSandbox()
    yield box
    box.close()


def test_array_arguments_reach_the_candidate_as_the_lists_tolist_makes(sandbox):
    arrays = [np.arange(12.0).reshape(3, 4) / 7, np.arange(5, dtype=np.int64) - 2, np.zeros((0, 4)),
              np.float64(2.5), np.int64(-3), np.arange(6.0)[::2], np.array([True, False]),
              np.arange(4, dtype=np.float32) / 3]
    src = ("def echo(x):\n"
           "    return [x, type(x).__name__, [type(v).__name__ for v in (x if type(x) is list else [x])]]\n")
    with sandbox.session(src, SandboxLimits(call_timeout=5, wall_seconds=60)) as s:
        got = s.call_many("echo", [(a,) for a in arrays])
        single = s.call("echo", arrays[0])
    for a, (value, kind, kinds) in zip(arrays, got):
        want = a.tolist()
        assert value == want and kind == type(want).__name__
        assert kinds == [type(v).__name__ for v in (want if type(want) is list else [want])]
    assert single[0] == arrays[0].tolist()


def test_the_cpu_counter_reads_anew_and_never_reads_after_close():
    support = CgroupSupport.probe()
    if not support.version:
        pytest.skip(f"no session cgroups here: {support.reason}")
    cgroup = support.session(256 * 2**20, 16)
    try:
        counter = cgroup.cpu_counter()
        first = counter()
        assert first == cgroup.cpu_seconds() and first >= 0.0
        counter.close()
        with pytest.raises(OSError):
            counter()
    finally:
        cgroup.remove()


PICKY = """
import numpy as np
def f(k, n):
    if k == 0:
        return np.arange(n, dtype=float) % 2   # ties: the first of the highest
    if k == 1:
        return [0.25] * n
    if k == 2:
        return list(range(n))                  # ints: not picked, the results come whole
    return [0.0] * (n + 1)                     # the wrong length: whole, for the caller's check to name
"""


def test_picked_replies_are_numpys_argmax_and_anything_else_comes_whole(sandbox):
    limits = SandboxLimits(call_timeout=5, wall_seconds=60)
    with sandbox.session(PICKY, limits) as s:
        picked = s.receive_many(s.send_many("f", [(0, 5), (1, 3), (0, 1)], pick_counts=[5, 3, 1]))
        assert isinstance(picked, Picked) and picked == [1, 0, 0]
        whole = s.receive_many(s.send_many("f", [(0, 3), (2, 3), (3, 2)], pick_counts=[3, 3, 2]))
        assert not isinstance(whole, Picked) and whole == [[0.0, 1.0, 0.0], [0, 1, 2], [0.0, 0.0, 0.0]]
        budget = CallBudget(s, 10.0)
        with pytest.raises(RejectedReply, match="returned 3 scores for 2") as caught:
            budget.numbers_many("f", [(0, 2), (3, 2)], counts=[2, 2], what="scores")
        assert caught.value.index == 1
        assert budget.receive_numbers(budget.send_numbers("f", [(0, 4)], counts=[4], pick=True)) == [1]


def test_a_candidate_that_forges_its_picks_gets_an_index_a_program_could_choose_or_nothing(sandbox):
    forger = ("import sys\n"
              "sys.modules['_runner']._pick = lambda result, count: (count + 1, [0.0] * count)\n"
              "def f(k, n):\n    return [0.0] * n\n")
    with sandbox.session(forger, SandboxLimits(call_timeout=5, wall_seconds=60)) as s:
        with pytest.raises(CandidateError, match="invalid reply"):
            s.receive_many(s.send_many("f", [(0, 3)], pick_counts=[3]))
