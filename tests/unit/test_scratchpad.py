from __future__ import annotations

from evolve.program import Program, ProgramStatus
from evolve.proposals.scratchpad import Scratchpad, explanation


def _p(pid, score, status=ProgramStatus.VALID, proposal="", error=""):
    return Program(id=pid, iteration=pid, status=status, code="", code_hash=str(pid), score=score,
                   proposal=proposal, error=error)


def test_explanation_is_the_text_before_the_first_edit():
    assert explanation("Use 2-opt after the greedy pass.\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n") == \
        "Use 2-opt after the greedy pass."
    assert explanation("Rewrite.\n```python\nx = 1\n```") == "Rewrite."
    assert len(explanation("word " * 100)) == 160


def test_best_gains_and_repeated_failures_are_kept():
    pad = Scratchpad(gains=2)
    parent = _p(1, 1.0)
    pad.observe(_p(2, 1.5, proposal="More steps.\n<<<<<<< SEARCH"), parent)
    pad.observe(_p(3, 1.1, proposal="Tiny tweak.\n<<<<<<< SEARCH"), parent)
    pad.observe(_p(4, 2.0, proposal="Better start.\n<<<<<<< SEARCH"), parent)
    pad.observe(_p(5, 0.5, proposal="Worse.\n<<<<<<< SEARCH"), parent)  # no gain: not a lesson
    for n in range(3):
        pad.observe(_p(10 + n, None, ProgramStatus.INVALID, error=f"Traceback...\nIndexError: index {n} out of range"),
                    parent)
    pad.observe(_p(20, None, ProgramStatus.EDIT_FAILED, error="edit 1: SEARCH text not found"), parent)
    text = pad.render()
    lines = text.splitlines()
    assert lines[1] == "- +1: Better start." and lines[2] == "- +0.5: More steps."
    assert "Tiny tweak" not in text and "Worse" not in text
    assert "- 3x IndexError: index N out of range" in text and "SEARCH text not found" not in text  # seen once
    assert pad.text == text
