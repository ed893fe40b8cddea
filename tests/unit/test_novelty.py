from __future__ import annotations

from evolve.proposals.novelty import canonical_hash, canonical_tokens, similarity

PROGRAM = '''import numpy as np

def solve(points, steps=10):
    """Sort the points."""
    order = np.argsort(points)  # ascending
    total = 0.0
    for step in range(steps):
        total += len(order)
    return order.tolist()
'''


def test_renames_comments_and_docstrings_do_not_make_a_new_program():
    renamed = (PROGRAM.replace("order", "idx").replace("total", "acc").replace("step", "k")
               .replace('"""Sort the points."""', '"""Return the indices in ascending order."""')
               .replace("# ascending", "# smallest first"))
    assert canonical_hash(renamed) == canonical_hash(PROGRAM)


def test_real_changes_do():
    for changed in (PROGRAM.replace("steps=10", "steps=11"), PROGRAM.replace("argsort", "sort"),
                    PROGRAM.replace("len(order)", "len(order) * 2"), PROGRAM.replace("+=", "-=")):
        assert canonical_hash(changed) != canonical_hash(PROGRAM)


def test_attributes_and_builtins_keep_their_names():
    tokens = canonical_tokens(PROGRAM)
    assert "argsort" in tokens and "tolist" in tokens and "range" in tokens and "len" in tokens
    assert "order" not in tokens and "solve" not in tokens


def test_similarity_grows_with_shared_tokens():
    a = canonical_tokens(PROGRAM)
    tiny = canonical_tokens(PROGRAM.replace("steps=10", "steps=11"))
    big = canonical_tokens(PROGRAM.replace("    for step in range(steps):\n        total += len(order)\n", ""))
    assert similarity(a, a) == 1.0 and 0.9 < similarity(a, tiny) < 1.0 and similarity(a, big) < similarity(a, tiny)
    assert similarity(a, canonical_tokens("x = 1\n")) < 0.5


def test_code_that_does_not_tokenize_still_has_a_canonical_form():
    assert canonical_tokens("def f(:\n  'unterminated") == ("def f(:", "'unterminated")
