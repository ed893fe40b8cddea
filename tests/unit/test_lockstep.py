"""`evaluators.lockstep`: episodes played side by side, one batch per round, each fed its own replies."""

from __future__ import annotations

import pytest

from evaluators import RejectedReply, lockstep


def _echo(name, n):
    """Asks n times with (name, k); returns what it was told, in order."""
    got = []
    for k in range(n):
        reply = yield (name, k)
        got.append(reply)
    return got


def test_each_episode_gets_its_own_replies_and_rounds_shrink_as_episodes_end():
    batches = []

    def ask(arg_lists):
        batches.append(list(arg_lists))
        return [f"{name}{k}" for name, k in arg_lists]

    outcomes = lockstep([_echo("a", 3), _echo("b", 1), _echo("c", 0), _echo("d", 2)], ask)
    assert outcomes == [["a0", "a1", "a2"], ["b0"], [], ["d0", "d1"]]
    assert batches == [[("a", 0), ("b", 0), ("d", 0)], [("a", 1), ("d", 1)], [("a", 2)]]
    assert lockstep([], ask) == []


def test_a_rejected_reply_names_its_episode():
    def ask(arg_lists):
        bad = next((i for i, (name, k) in enumerate(arg_lists) if name == "c" and k == 1), None)
        if bad is not None:
            raise RejectedReply("no", index=bad)
        return [None] * len(arg_lists)

    with pytest.raises(RejectedReply) as caught:
        lockstep([_echo("a", 1), _echo("b", 5), _echo("c", 5)], ask)
    assert caught.value.episode == 2  # in round 1 the batch is (b, c): index 1 is episode 2
