from __future__ import annotations

import pytest

from evolve.edits import (SearchReplace, apply_edits, apply_proposal, evolve_blocks, format_diff,
                          normalized_hash, parse_diff)
from evolve.errors import EditError

PROGRAM = """import math

# EVOLVE-BLOCK-START
def f(x):
    return x * 2
# EVOLVE-BLOCK-END

def run():
    return f(3)
"""


def test_blocks_cover_only_marked_code():
    (start, end), = evolve_blocks(PROGRAM)
    assert PROGRAM[start:end] == "def f(x):\n    return x * 2\n"


def test_unbalanced_markers_are_errors():
    with pytest.raises(EditError, match="never closed"):
        evolve_blocks("# EVOLVE-BLOCK-START\nx = 1\n")
    with pytest.raises(EditError, match="without a matching"):
        evolve_blocks("x = 1\n# EVOLVE-BLOCK-END\n")


def test_program_without_markers_is_one_block():
    assert evolve_blocks("x = 1\n") == [(0, 6)]


def test_search_replace_applies_inside_block():
    text = "Double to triple.\n" + format_diff([SearchReplace("    return x * 2\n", "    return x * 3\n")])
    child = apply_proposal(PROGRAM, text)
    assert "return x * 3" in child and child.replace("x * 3", "x * 2") == PROGRAM


def test_parse_diff_reads_several_blocks():
    text = format_diff([SearchReplace("a\n", "b\n"), SearchReplace("c\n", "d\n")])
    assert parse_diff(text) == [SearchReplace("a\n", "b\n"), SearchReplace("c\n", "d\n")]


def test_edit_outside_block_is_refused_with_reason():
    text = format_diff([SearchReplace("    return f(3)\n", "    return 99\n")])
    with pytest.raises(EditError, match="outside the EVOLVE-BLOCKs"):
        apply_proposal(PROGRAM, text)


def test_edit_that_moves_a_marker_is_refused():
    text = format_diff([SearchReplace("    return x * 2\n", "    return x * 2\n# EVOLVE-BLOCK-END\n")])
    with pytest.raises(EditError):
        apply_proposal(PROGRAM, text)


def test_missing_and_ambiguous_search_text():
    with pytest.raises(EditError, match="not found"):
        apply_edits(PROGRAM, [SearchReplace("    return x * 5\n", "")])
    with pytest.raises(EditError, match="occurs 2 times"):
        apply_edits("# EVOLVE-BLOCK-START\nx = 1\nx = 1\n# EVOLVE-BLOCK-END\n", [SearchReplace("x = 1\n", "x = 2\n")])


def test_full_rewrite_must_keep_the_frozen_code():
    good = "```python\n" + PROGRAM.replace("x * 2", "x + x") + "```"
    assert "x + x" in apply_proposal(PROGRAM, good)
    bad = "```python\n" + PROGRAM.replace("f(3)", "f(4)") + "```"
    with pytest.raises(EditError, match="outside the EVOLVE-BLOCKs"):
        apply_proposal(PROGRAM, bad)
    with pytest.raises(EditError, match="dropped the EVOLVE-BLOCK markers"):
        apply_proposal(PROGRAM, "```python\ndef f(x):\n    return 1\n```")


def test_reply_without_edit_and_no_op_edit():
    with pytest.raises(EditError, match="neither SEARCH/REPLACE"):
        apply_proposal(PROGRAM, "I think the program is fine.")
    with pytest.raises(EditError, match="unchanged"):
        apply_proposal(PROGRAM, format_diff([SearchReplace("    return x * 2\n", "    return x * 2\n")]))


def test_normalized_hash_ignores_comments_and_blank_lines_only():
    assert normalized_hash(PROGRAM) == normalized_hash(PROGRAM.replace("\n\ndef run", "\n\n\n# note\ndef run"))
    assert normalized_hash(PROGRAM) != normalized_hash(PROGRAM.replace("x * 2", "x * 3"))


def test_a_rewrite_that_only_loses_trailing_whitespace_is_accepted():
    rewrite = PROGRAM.replace("x * 2", "x + x").rstrip() + "   "
    assert "x + x" in apply_proposal(PROGRAM, "```python\n" + rewrite + "\n```")
