from __future__ import annotations

from evolve.program import Program, ProgramStatus
from evolve.proposals.scratchpad import Scratchpad, explanation


def _p(pid, score, status=ProgramStatus.VALID, proposal="", error="", island=0, iteration=None):
    return Program(id=pid, iteration=pid if iteration is None else iteration, status=status, code="",
                   code_hash=str(pid), score=score, proposal=proposal, error=error, island=island)


def test_explanation_is_the_text_before_the_first_edit():
    assert explanation("Use 2-opt after the greedy pass.\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n") == \
        "Use 2-opt after the greedy pass."
    assert explanation("Rewrite.\n```python\nx = 1\n```") == "Rewrite."
    assert len(explanation("word " * 100)) == 160


def test_best_gains_and_repeated_failures_are_kept():
    pad = Scratchpad(gains=2)
    parent = _p(1, 1.0, iteration=0)
    pad.observe(parent)
    pad.observe(_p(2, 1.5, proposal="More steps.\n<<<<<<< SEARCH"), parent)
    pad.observe(_p(3, 1.1, proposal="Tiny tweak.\n<<<<<<< SEARCH"), parent)
    pad.observe(_p(4, 2.5, proposal="Better start.\n<<<<<<< SEARCH"), parent)
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


def test_gains_are_ranked_against_the_islands_best_not_a_weak_parent():
    pad = Scratchpad()
    pad.observe(_p(1, -20.0, iteration=0))  # the initial program: every island's first best
    pad.observe(_p(2, -15.0, proposal="Two-opt pass.\n<<<<<<< SEARCH", island=0))  # +5 over the best
    pad.observe(_p(3, -31.0, proposal="Broke the route.\n<<<<<<< SEARCH", island=0))  # a weak program
    repair = _p(4, -16.0, proposal="Repair the broken route.\n<<<<<<< SEARCH", island=0)  # +15 over its parent
    pad.observe(repair, _p(3, -31.0))
    pad.observe(_p(5, -19.0, proposal="Greedy start.\n<<<<<<< SEARCH", island=1))  # +1 on its own island
    pad.observe(_p(6, -14.5, proposal="Or-opt moves.\n<<<<<<< SEARCH", island=0))  # +0.5 over -15
    lines = pad.render().splitlines()
    assert lines[1:] == ["- +5: Two-opt pass.", "- +1: Greedy start.", "- +0.5: Or-opt moves."]


def test_a_restored_scratchpad_ranks_as_the_live_one(tmp_path):
    from evolve.storage.database import ProgramDatabase

    db = ProgramDatabase(f"sqlite:///{tmp_path / 'p.db'}", "c")
    live = Scratchpad()
    try:
        for n, (score, island, text) in enumerate([(-20.0, 0, ""), (-15.0, 0, "Two-opt."), (-31.0, 0, "Broke."),
                                                   (-16.0, 0, "Repair."), (-14.0, 1, "Or-opt.")]):
            program = db.add(iteration=n, status=ProgramStatus.VALID, code=f"x = {n}\n", code_hash=str(n),
                             score=score, island=island, proposal=f"{text}\n<<<<<<< SEARCH")
            live.observe(program)
        restored = Scratchpad()
        restored.restore(db)
        assert restored.text == live.render() and "Repair" not in restored.text
        assert restored.text.splitlines()[1:] == ["- +6: Or-opt.", "- +5: Two-opt."]
    finally:
        db.close()
