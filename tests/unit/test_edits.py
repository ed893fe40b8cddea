from __future__ import annotations

import pytest

from evolve.errors import EditError
from evolve.proposals.edits import (
    SearchReplace,
    apply_edits,
    apply_proposal,
    evolve_blocks,
    format_diff,
    normalized_hash,
    parse_diff,
)

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


CHILD = PROGRAM.replace("x * 2", "x * 3")
DIFF = "<<<<<<< SEARCH\n    return x * 2\n=======\n    return x * 3\n>>>>>>> REPLACE\n"


def _indent(text, prefix):
    return "".join(prefix + line if line.strip() else line for line in text.splitlines(keepends=True))


@pytest.mark.parametrize("opening, closing", [
    ("```python", "```"), ("```Python", "```"), ("```PYTHON", "```"), ("```py", "```"), ("```python3", "```"),
    ("```", "```"), ("``` python", "```"), ("```python  ", "```  "), ("~~~python", "~~~"), ("````python", "````"),
    ("```python", "    ```"), ("```python", "`````"), ("Here is the program: ```python", "```"),
])
def test_fence_variants_hold_a_full_rewrite(opening, closing):
    assert apply_proposal(PROGRAM, f"Here it is.\n\n{opening}\n{CHILD}{closing}\n\nDone.") == CHILD


def test_a_fence_inside_a_list_item_is_read_without_the_item_indentation():
    reply = "1. Triple it:\n\n" + _indent(f"```python\n{CHILD}```\n", "   ")
    assert apply_proposal(PROGRAM, reply) == CHILD
    assert apply_proposal(PROGRAM, "1. Triple it:\n" + _indent(f"```python\n{DIFF}```\n", "    ")) == CHILD


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_lone_cr_line_endings(newline):
    for reply in (f"Triple.\n{DIFF}", f"```python\n{CHILD}```\n", f"```python\n{DIFF}```"):
        assert apply_proposal(PROGRAM, reply.replace("\n", newline)) == CHILD


@pytest.mark.parametrize("search, divider, replace", [
    ("<<<<< SEARCH", "=====", ">>>>> REPLACE"), ("<<<<<<<<< SEARCH", "=========", ">>>>>>>>> REPLACE"),
    ("<<<<<<< SEARCH  ", "======= \t", ">>>>>>> REPLACE "), ("<<<<<<<SEARCH", "=======", ">>>>>>>REPLACE"),
])
def test_marker_variants(search, divider, replace):
    reply = f"{search}\n    return x * 2\n{divider}\n    return x * 3\n{replace}\n"
    assert apply_proposal(PROGRAM, reply) == CHILD


def test_markers_indented_to_the_code_apply_when_they_can_mean_one_thing_only():
    assert apply_proposal(PROGRAM, _indent(DIFF.replace("    return", "return"), "    ")) == CHILD
    parent = "# EVOLVE-BLOCK-START\nif a:\n    x = 1\n    y = 2\nx = 1\ny = 2\n# EVOLVE-BLOCK-END\n"
    reply = _indent("<<<<<<< SEARCH\nx = 1\ny = 2\n=======\nx = 3\ny = 2\n>>>>>>> REPLACE\n", "    ")
    with pytest.raises(EditError, match="one place as written and another without its indentation"):
        apply_proposal(parent, reply)


def test_copies_of_the_parent_and_repeats_do_not_compete_with_the_rewrite():
    assert apply_proposal(PROGRAM, f"Before:\n```python\n{PROGRAM}```\nAfter:\n```python\n{CHILD}```\n") == CHILD
    assert apply_proposal(PROGRAM, f"```python\n{CHILD}```\nAgain:\n```python\n{CHILD}```\n") == CHILD


def test_two_different_full_programs_are_refused():
    other = PROGRAM.replace("x * 2", "x * 4")
    with pytest.raises(EditError, match="2 different full programs; give exactly one"):
        apply_proposal(PROGRAM, f"```python\n{CHILD}```\nor\n```python\n{other}```\n")


def test_an_unclosed_fence_counts_only_when_the_program_visibly_ends():
    assert apply_proposal(PROGRAM, f"```python\n{CHILD}") == CHILD
    with pytest.raises(EditError, match="fenced program is never closed"):
        apply_proposal(PROGRAM, f"```python\n{CHILD[:-12]}")
    with pytest.raises(EditError, match="fenced program is never closed"):
        apply_proposal(PROGRAM, f"```python\n{CHILD}\nThat triples it.\n")
    with pytest.raises(EditError, match="fenced program is never closed"):  # no markers: no visible end
        apply_proposal("x = 1\n", "```python\nx = 2\n")


@pytest.mark.parametrize("reply, reason", [
    (DIFF[:50], "edit 1 is never closed: end every edit with a >>>>>>> REPLACE line"),
    (DIFF.replace("=======\n", ""), "edit 1 has no ======= line"),
    (">>>>>>> REPLACE\n" + DIFF, "without a <<<<<<< SEARCH line before it"),
    (DIFF.replace(">>>>>>> REPLACE\n", "") + DIFF, "edit 1 has no >>>>>>> REPLACE line before the next"),
    (DIFF + DIFF.replace("x * 3", "x * 4"), "edit 2: SEARCH text .* was already changed by an earlier edit"),
    ("<<<<<<< SEARCH\n\n=======\n    return 1\n>>>>>>> REPLACE\n", "the SEARCH part is empty"),
])
def test_malformed_edits_are_refused_with_one_line_reasons(reply, reason):
    with pytest.raises(EditError, match=reason) as caught:
        apply_proposal(PROGRAM, reply)
    assert "\n" not in str(caught.value)
