"""Prompts fitted to a model's context, and what became of proposals, by kind."""

from __future__ import annotations

import collections

import pytest

from evolve.observe.outcomes import UnappliedWatch, edit_failure_kind, model_outcomes, trailing_unapplied
from evolve.program import Program, ProgramStatus
from evolve.proposals.llm.base import PromptTooLarge
from evolve.proposals.prompts import PromptBuilder, estimate_tokens


def _p(pid, score, code, **kw):
    return Program(id=pid, iteration=pid, status=ProgramStatus.VALID, code=code, code_hash=str(pid),
                   score=score, **kw)


def _failure(pid, error, status=ProgramStatus.EDIT_FAILED, proposer="m"):
    return Program(id=pid, iteration=pid, status=status, code="", code_hash=str(pid), error=error, parent_id=1,
                   proposer=proposer)


PARENT = _p(1, 1.0, "def solve():\n    return 1\n", feedback="f" * 1200)
INSPIRATIONS = [_p(n, 2.0, f"def solve():\n    return {n}  # {'x' * 600}\n") for n in (2, 3, 4)]
FAILURES = [_failure(9, "edit 1: SEARCH text not found in the program " + "y" * 250)]
SCRATCH = "More steps helped. " * 30


def _build(budget, **kw):
    args = dict(parent=PARENT, inspirations=INSPIRATIONS, failures=FAILURES, scratchpad=SCRATCH)
    args.update(kw)
    return PromptBuilder("Pack circles.", "solve").build(max_tokens=budget, **args)


def test_estimate_is_conservative_and_counts_every_message():
    messages = [{"role": "system", "content": "a" * 300}, {"role": "user", "content": "b" * 30}]
    assert estimate_tokens(messages, 3.0) == 3 + (100 + 4) + (10 + 4)
    assert estimate_tokens(messages, 3.0) > sum(len(m["content"]) for m in messages) / 4  # BPE: ~4 chars a token


def test_no_budget_or_a_roomy_one_trims_nothing():
    full = _build(None)
    assert full.trimmed == () and len(full.inspirations) == 3 and full.tokens > 0
    assert _build(full.tokens).trimmed == () and _build(full.tokens).messages == full.messages


def test_inspirations_go_first_then_the_scratchpad_the_failures_and_the_feedback():
    full = _build(None).tokens
    one = _build(full - 10)
    assert one.trimmed == ("1 inspiration",) and len(one.inspirations) == 2 and one.tokens <= full - 10
    assert "Inspiration 3" not in one.messages[1]["content"] and "More steps helped" in one.messages[1]["content"]
    bare = _build(None, inspirations=[], failures=[], scratchpad="")
    steps = _build(bare.tokens + 80)  # room for the failures (about 110 tokens) only with no scratchpad
    assert steps.trimmed[:2] == ("3 inspirations", "the scratchpad")
    smallest = _build(bare.tokens - 300)  # the feedback too
    assert smallest.trimmed == ("3 inspirations", "the scratchpad", "the recent failures", "the parent's feedback")
    assert "left out to fit the model's context" in smallest.messages[1]["content"] and "fff" not in \
        smallest.messages[1]["content"]


def test_a_crossover_that_cannot_fit_becomes_a_diff():
    second = _p(5, 1.5, "def solve():\n    return 5  # " + "z" * 3000 + "\n")
    fitted = _build(_build(None, inspirations=[], failures=[], scratchpad="").tokens, mode="crossover",
                    second_parent=second)
    assert fitted.mode == "diff" and fitted.second_parent is None and "the second parent" in fitted.trimmed


def test_a_prompt_that_cannot_fit_raises():
    with pytest.raises(PromptTooLarge, match=r"needs about \d+ tokens even without 3 inspirations, .*; its model "
                                             r"allows 50 \(context_tokens minus max_tokens\)"):
        _build(50)


def test_edit_failures_are_grouped_into_kinds():
    kinds = {
        "the reply holds neither SEARCH/REPLACE blocks nor a ```python fenced program": "no edit found",
        "the reply holds no SEARCH/REPLACE block": "no edit found",
        "edit 1: SEARCH text not found in the program (first line: 'x'); copy the lines exactly": "SEARCH not found",
        "edit 1: SEARCH text lies outside the EVOLVE-BLOCKs; only code between": "outside EVOLVE-BLOCKs",
        "the edit changed code outside the EVOLVE-BLOCKs (or their markers)": "outside EVOLVE-BLOCKs",
        "edit 2: SEARCH text occurs 3 times; include more lines so it is unique": "ambiguous",
        "edit 1 is never closed: end every edit with a >>>>>>> REPLACE line": "cut off at max_tokens",
        "edit 1: SEARCH text not found (the reply was cut off at max_tokens: ask for smaller edits)":
            "cut off at max_tokens",
        "edit 1 has no ======= line between its SEARCH and REPLACE parts": "malformed edit",
        "the edit leaves the program unchanged": "no change",
        "something new": "other",
    }
    assert {error: edit_failure_kind(error) for error in kinds} == kinds


def test_outcomes_per_model_and_the_trailing_run():
    programs = [
        _p(1, 1.0, "x"),  # the initial program: no proposal
        Program(id=2, iteration=2, status=ProgramStatus.VALID, code="", code_hash="2", score=2.0, parent_id=1,
                proposer="m"),
        _failure(3, "the reply holds no SEARCH/REPLACE block"),
        _failure(4, "m: APIConnectionError: refused", ProgramStatus.PROPOSAL_FAILED),
        _failure(5, "edit 1: SEARCH text not found in the program"),
        _failure(6, "m: the prompt needs about 900 tokens even without 2 inspirations; its model allows 500 "
                    "(context_tokens minus max_tokens)", ProgramStatus.PROPOSAL_FAILED),
        _failure(7, "edit 1: SEARCH text not found in the program", proposer="other"),
    ]
    m = model_outcomes(programs)["m"]
    assert (m.proposals, m.applied, m.edit_failed, m.transport_failed, m.prompt_too_large) == (5, 1, 2, 1, 1)
    assert m.edit_failures == collections.Counter({"no edit found": 1, "SEARCH not found": 1})
    assert (m.evaluated, m.valid) == (1, 1) and "initial" not in model_outcomes(programs)
    run, reasons, last = trailing_unapplied(programs)
    assert run == 3 and reasons["SEARCH not found"] == 2 and "not found" in last  # transport failures are neutral


def test_the_watch_stops_or_warns_every_limit_in_a_row(caplog):
    stop, warn = UnappliedWatch(3, "stop"), UnappliedWatch(3, "warn")
    sequence = [_failure(n, "the reply holds no SEARCH/REPLACE block") for n in range(2)]
    sequence += [_p(9, 1.0, "x")]  # an applied edit breaks the run
    sequence += [_failure(n, "edit 1: SEARCH text not found in the program") for n in range(10, 13)]
    for program in sequence:
        stop.observe(program)
        warn.observe(program)
    assert stop.stopped and "3 proposals in a row could not be applied; top reasons: SEARCH not found 3" in stop.message
    assert not warn.stopped and warn.warnings == 1 and "llm.on_unapplied=warn" in caplog.text
    never = UnappliedWatch(None)
    for program in sequence * 10:
        never.observe(program)
    assert not never.stopped
    with pytest.raises(Exception, match=r"llm\.on_unapplied='maybe'"):
        UnappliedWatch(3, "maybe")
