from __future__ import annotations

import ast
import asyncio
import random

import pytest

from evolve.errors import ProposerError
from evolve.problems import read_initial_program
from evolve.program import Program, ProgramStatus
from evolve.proposals.edits import apply_proposal, evolve_blocks
from evolve.proposals.llm import OfflineMutator
from evolve.proposals.llm.base import Prompt
from evolve.proposals.llm.offline.constants import StepSizes, constant_change
from evolve.proposals.llm.offline.crossover import unbound_read
from evolve.proposals.llm.offline.source import Source


def _program(code, pid=1):
    return Program(id=pid, iteration=0, status=ProgramStatus.VALID, code=code, code_hash=str(pid), score=1.0)


def _frozen(code):
    spans = evolve_blocks(code)
    return code[: spans[0][0]] + code[spans[-1][1]:]


def _propose(mutator, code, *others, mode="diff", second=None):
    prompt = Prompt([], _program(code), [_program(c, n + 2) for n, c in enumerate(others)], mode=mode,
                    second_parent=_program(second, 99) if second else None)
    return asyncio.run(mutator.propose(prompt))


def _block(body: str) -> str:
    return f"import math\n\n# EVOLVE-BLOCK-START\n{body}# EVOLVE-BLOCK-END\n\nprint('frozen')\n"


def test_every_proposal_applies_changes_only_the_blocks_and_names_its_moves(circle_problem):
    code = read_initial_program(circle_problem)
    mutator = OfflineMutator(seed=3, max_edits=3)
    kinds = set()
    for _ in range(200):
        proposal = _propose(mutator, code)
        assert "<<<<<<< SEARCH" in proposal.text and proposal.model == "offline-mutator"
        child = apply_proposal(code, proposal.text)
        assert child != code and _frozen(child) == _frozen(code)
        ast.parse(child)
        kinds.update(proposal.reason.split("+"))
    assert {"constant", "operator", "term", "reorder"} <= kinds


def test_same_seed_same_proposals(circle_problem):
    code = read_initial_program(circle_problem)
    runs = [[_propose(m, code).text for _ in range(20)] for m in (OfflineMutator(seed=11), OfflineMutator(seed=11))]
    assert runs[0] == runs[1]
    other = OfflineMutator(seed=12)
    assert [_propose(other, code).text for _ in range(20)] != runs[0]


def test_no_child_is_proposed_twice():
    code = _block("A = 1.5\nB = 2.5\n")
    mutator = OfflineMutator(seed=0, weights={"constant": 1.0})
    children = [apply_proposal(code, _propose(mutator, code).text) for _ in range(60)]
    assert len(set(children)) == 60 and code not in children


def test_subscripts_and_loop_bounds_are_left_alone():
    code = _block("WEIGHT = 0.5\n\n\ndef f(xs, n):\n    total = 0.0\n    for i in range(n - 1):\n"
                  "        total += WEIGHT * xs[i + 1] - xs[i] * 2.0 + xs[-1]\n    here = 0\n"
                  "    return total + xs[here] * 3.5\n")
    mutator = OfflineMutator(seed=5, max_edits=2, weights={"constant": 1.0, "operator": 1.0, "term": 1.0})
    for _ in range(150):
        child = apply_proposal(code, _propose(mutator, code).text)
        for kept in ("range(n - 1)", "xs[i + 1]", "xs[i]", "xs[-1]", "here = 0", "xs[here]"):
            assert kept in child


def test_crossover_takes_whole_statements_from_an_inspiration():
    parent = _block("def f(x):\n    a = x * 1.0\n    return a\n")
    donor = _block("def f(x):\n    a = x * 1.0\n    a = a * 7.0 + 5.0\n    b = a - 1.0\n    return a + b\n")
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"crossover": 1.0})
    seen = set()
    for _ in range(4):
        proposal = _propose(mutator, parent, donor)
        child = apply_proposal(parent, proposal.text)
        assert child not in (parent, donor)
        ast.parse(child)
        seen.add(proposal.reason)
    assert seen <= {"statement", "function", "blend"} and "statement" in seen


def test_crossover_replaces_a_setting_rather_than_doubling_it():
    parent = _block("W = 1.0\nV = 2.0\n")
    donor = _block("U = 0.5\nW = 3.0\nV = 2.0\n")
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"crossover": 1.0})
    for _ in range(3):
        child = apply_proposal(parent, _propose(mutator, parent, donor).text)
        assert child.count("W = ") <= 1


def test_crossover_of_numbers_blends_one_constant():
    parent = _block("def f(x):\n    return x * 1.0 + 2.0\n")
    donor = _block("def f(x):\n    return x * 3.0 + 4.0\n")
    mutator = OfflineMutator(seed=1, max_edits=1, weights={"crossover": 1.0})
    reasons = {_propose(mutator, parent, donor).reason for _ in range(12)}
    assert "blend" in reasons


def test_a_crossover_between_equal_blocks_is_skipped():
    parent = _block("W = 1.0\n")
    twin = _block("W = 1.0  # the same code, another comment\n")
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"crossover": 1.0})
    with pytest.raises(ProposerError, match="nothing to mutate"):
        _propose(mutator, parent, mode="crossover", second=twin)
    mutator = OfflineMutator(seed=0, max_edits=1)
    for _ in range(10):
        assert _propose(mutator, parent, mode="crossover", second=twin).reason == "constant"


def test_reorder_swaps_only_independent_statements():
    code = _block("def f(x, y, z):\n    a = abs(x)\n    b = a + 1\n    c = 2.0 * y\n    d = 3.0 * z\n"
                  "    return a + b + c + d\n")
    mutator = OfflineMutator(seed=2, max_edits=1, weights={"reorder": 1.0})
    children = set()
    for _ in range(3):
        try:
            children.add(apply_proposal(code, _propose(mutator, code).text))
        except ProposerError:
            break
    for child in children:
        assert child.index("a = abs(x)") < child.index("b = a + 1")
    assert any(child.index("d = 3.0") < child.index("c = 2.0") for child in children)


def test_an_added_term_uses_only_names_in_scope():
    code = _block("SCALE = 2.0\n\n\ndef f(x, y):\n    s = x * SCALE\n    t = [v * y for v in range(3)]\n"
                  "    return s + y - t[1]\n")
    mutator = OfflineMutator(seed=4, max_edits=1, weights={"term": 1.0})
    for _ in range(30):
        proposal = _propose(mutator, code)
        assert proposal.reason == "term"
        namespace: dict = {}
        exec(apply_proposal(code, proposal.text).replace("print('frozen')", ""), namespace)
        namespace["f"](1.0, 2.0)  # no NameError: every name of the term is bound where it is used


def test_a_block_of_strings_gets_moves():
    code = _block('GREETING = "hello"\nPARTS = ["ab", "cd", "ef"]\n\n\ndef build():\n'
                  '    return GREETING + " " + "-".join(PARTS)\n')
    mutator = OfflineMutator(seed=0)
    reasons = set()
    for _ in range(40):
        proposal = _propose(mutator, code)
        apply_proposal(code, proposal.text)
        reasons.update(proposal.reason.split("+"))
    assert {"literal", "sequence"} <= reasons


def test_step_sizes_widen_on_success_and_narrow_on_failure():
    code = _block("W = 1.5\n")
    grown, shrunk = (OfflineMutator(seed=0, max_edits=1, weights={"constant": 1.0}) for _ in range(2))
    start = grown.steps.size("W")
    for mutator, improved in ((grown, True), (shrunk, False)):
        for _ in range(5):
            mutator.observe(_propose(mutator, code), improved)
    assert shrunk.steps.size("W") < start
    assert grown.steps.size("W") > shrunk.steps.size("W")
    assert grown.tally["constant"] == [5, 5] and shrunk.tally["constant"] == [5, 0]


def _constant_moves(mutator, code, improved, n=40):
    """Propose `n` single-constant changes, each observed as `improved(note)` says; return their notes."""
    notes = []
    for _ in range(n):
        proposal = _propose(mutator, code)
        note = proposal.text.split("\n", 1)[0]
        mutator.observe(proposal, improved(note))
        notes.append(note)
    return notes


def test_constants_whose_steps_improved_are_drawn_more_often():
    code = _block("A = 1.5\nB = 2.5\nC = 3.5\nD = 4.5\n")
    mutator = OfflineMutator(seed=3, max_edits=1, weights={"constant": 1.0})
    _constant_moves(mutator, code, lambda note: " B:" in note, n=60)
    later = _constant_moves(mutator, code, lambda note: " B:" in note, n=60)
    assert sum(" B:" in note for note in later) > 30  # uniform drawing would give about 15
    assert mutator.steps.weight("B") > 3 * mutator.steps.weight("A")


def test_steps_follow_the_direction_of_the_last_success():
    code = _block("W = 1.5\n")
    mutator = OfflineMutator(seed=5, max_edits=1, weights={"constant": 1.0})
    _constant_moves(mutator, code, lambda note: float(note.split("-> ")[1].rstrip(".")) > 1.5, n=10)
    assert mutator.steps.direction("W") == 1
    later = _constant_moves(mutator, code, lambda note: False, n=60)
    ups = sum(float(note.split("-> ")[1].rstrip(".")) > 1.5 for note in later)
    assert ups > 36  # half follow the direction, half go either way: about 45 of 60


def test_the_local_search_follows_the_last_improving_step_until_it_overshoots():
    src = Source(_block("A = 1.5\nB = 2.5\nC = 3.5\nD = 4.5\n"))
    steps, rng = StepSizes(), random.Random(0)
    steps.update("C", 0.1, True, -1)  # a step of 0.1 down on C improved its parent
    followed = [constant_change(src, steps, rng, follow=True) for _ in range(30)]
    assert all(c is not None and c.key == "C" and c.direction == -1 and 0.07 <= c.sigma <= 0.2 for c in followed)
    drawn = [constant_change(src, steps, rng) for _ in range(60)]
    assert {c.key for c in drawn if c is not None} == {"A", "B", "C", "D"}
    steps.update("C", 0.05, False, -1)  # a shorter step failed: keep following
    assert steps.streak is not None and steps.streak[:2] == ("C", -1)
    steps.update("C", 0.3, False, -1)  # a step longer than the one that improved failed: stop following
    assert steps.streak is None


def test_a_zero_weight_moves_to_a_magnitude_between_a_hundredth_and_ten():
    code = _block("W = 0.0\n")
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"constant": 1.0})
    values = [abs(float(note.split("-> ")[1].rstrip("."))) for note in _constant_moves(mutator, code, lambda n: False)]
    assert all(0.00999 <= v <= 10.01 for v in values)
    assert min(values) < 0.1 and max(values) > 1.0


def test_a_crossover_that_reads_a_name_it_never_binds_is_not_proposed():
    parent = _block("def f(x):\n    a = x * 1.0\n    return a\n")
    donor = _block("def f(x):\n    b = x * 2.0\n    c = b + x\n    return a + c\n")
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"crossover": 1.0})
    children = []
    for _ in range(20):
        try:
            proposal = _propose(mutator, parent, donor)
        except ProposerError as exc:
            assert "never binds" in str(exc)
            break
        children.append(apply_proposal(parent, proposal.text))
    else:
        pytest.fail("the crossovers never ran out")
    for child in children:
        body = child.split("def f(x):\n")[1]
        assert ("return a" not in body or "a = " in body) and ("c" not in body or "c = " in body)
        assert "b + x" not in body or "b = " in body.split("b + x")[0]


def test_the_best_parent_seen_gets_single_constant_steps():
    code = _block('A = 1.5\nB = 2.5\nS = "abcdefghij"\nT = "klmnopqrst"\n')

    def reasons(scores):
        mutator = OfflineMutator(seed=1, max_edits=1, weights={"constant": 0.01, "literal": 1.0})
        found = []
        for score in scores:
            parent = Program(id=1, iteration=0, status=ProgramStatus.VALID, code=code, code_hash="1", score=score)
            found.append(asyncio.run(mutator.propose(Prompt([], parent, []))).reason)
        return found[1:]

    best = reasons([1.0] * 61)  # each parent is the best seen: three proposals in ten are a constant step
    worse = reasons([2.0] + [1.0] * 60)  # a better parent was seen first: no local search
    assert 8 <= best.count("constant") <= 30
    assert worse.count("constant") <= 3


def test_unbound_read_names_the_name():
    assert unbound_read(ast.parse("def f(x):\n    y = z + x\n    return y\n")) == "z"
    assert unbound_read(ast.parse("def f(x):\n    y = x\n    print(w)\n    w = 1\n")) == "w"
    assert unbound_read(ast.parse("W = 1\ndef f(x):\n    for k in range(x):\n        x += k * W\n    return x\n")) \
        is None


def test_a_block_it_cannot_change_is_one_line_naming_why():
    mutator = OfflineMutator(seed=0)
    with pytest.raises(ProposerError, match="nothing to mutate") as caught:
        _propose(mutator, _block("pass\n"))
    assert "\n" not in str(caught.value) and "no tunable number" in str(caught.value)
    with pytest.raises(ProposerError, match="does not parse") as caught:
        _propose(mutator, _block("def f(:\n    pass\n"))
    assert "\n" not in str(caught.value)


def _elite_prompt(parent, parent_score, donors):
    return Prompt([], Program(id=1, iteration=0, status=ProgramStatus.VALID, code=parent, code_hash="p",
                              score=parent_score),
                  [Program(id=n + 2, iteration=0, status=ProgramStatus.VALID, code=code, code_hash=str(n),
                           score=score) for n, (code, score) in enumerate(donors)])


def _values(code):
    namespace: dict = {}
    exec(code.replace("print('frozen')", ""), namespace)
    return namespace


def test_elites_move_the_shared_numbers_together_within_the_elites_reach():
    parent = _block("A = 1.0\nB = 2.0\nC = -3.0\n\n\ndef f(xs):\n    return xs[1] * A + B\n")
    donors = [(parent.replace("1.0", "1.5").replace("2.0", "2.5").replace("-3.0", "-4.0"), 2.0),
              (parent.replace("1.0", "1.2").replace("-3.0", "-3.5"), 1.5)]
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"elites": 1.0})
    several = 0
    for _ in range(30):
        proposal = asyncio.run(mutator.propose(_elite_prompt(parent, 1.0, donors)))
        assert proposal.reason == "elites"
        child = apply_proposal(parent, proposal.text)
        values = _values(child)
        assert values["A"] > 0 and values["B"] > 0 and values["C"] < 0  # every program agrees on the signs
        assert 0.0 < values["A"] < 3.0 and -8.0 < values["C"] < 0.0
        assert "xs[1]" in child
        several += sum(values[k] != _values(parent)[k] for k in "ABC") > 1
    assert several  # some proposals move more than one number at once


def test_elites_leave_indices_to_the_other_programs_values():
    parent = _block("W = 2.5\n\n\ndef f(xs):\n    return W * xs[3]\n")
    donors = [(parent.replace("2.5", "3.5").replace("xs[3]", "xs[5]"), 2.0)]
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"elites": 1.0})
    for _ in range(10):
        child = apply_proposal(parent, asyncio.run(mutator.propose(_elite_prompt(parent, 1.0, donors))).text)
        assert "xs[3]" in child or "xs[5]" in child


def test_elites_need_programs_of_the_same_shape():
    parent = _block("A = 1.0\n")
    other = _block("def g():\n    return 2.0\n")
    mutator = OfflineMutator(seed=0, max_edits=1, weights={"elites": 1.0})
    with pytest.raises(ProposerError, match="nothing to mutate"):
        asyncio.run(mutator.propose(_elite_prompt(parent, 1.0, [(other, 2.0)])))


def test_moves_of_one_proposal_touch_disjoint_parts_and_apply_in_one_go(circle_problem):
    code = read_initial_program(circle_problem)
    mutator = OfflineMutator(seed=7, max_edits=4)
    several = 0
    for _ in range(60):
        proposal = _propose(mutator, code)
        child = apply_proposal(code, proposal.text)
        ast.parse(child)
        several += proposal.reason.count("+") >= 2
    assert several


def test_constants_whose_steps_change_nothing_are_drawn_less_and_step_further():
    code = _block("LIVE = 1.5\nDEAD = 2.5\n")  # as if DEAD sat in code that never runs
    mutator = OfflineMutator(seed=4, max_edits=1, weights={"constant": 1.0})
    start = mutator.steps.size("DEAD")
    for _ in range(40):
        proposal = _propose(mutator, code)
        mutator.observe(proposal, False)
        if " DEAD:" in proposal.text.split("\n", 1)[0]:
            mutator.observe_unchanged(proposal)
    later = [_propose(mutator, code).text.split("\n", 1)[0] for _ in range(40)]
    assert sum(" LIVE:" in note for note in later) > 30  # as often as DEAD before: about 20
    assert mutator.steps.weight("DEAD") < mutator.steps.weight("LIVE") / 3
    assert mutator.steps.size("DEAD") > start > mutator.steps.size("LIVE")


def test_a_line_search_step_that_changes_nothing_does_not_end_the_line_search():
    steps = StepSizes()
    steps.update("C", 0.1, True, -1)
    steps.update("C", 0.3, False, -1)  # longer, and no better: ended, unless it changed nothing at all
    steps.unchanged("C", 0.3)
    assert steps.streak == ("C", -1, 0.1)
    steps.update("C", 0.3, False, -1)  # this time it was worse
    assert steps.streak is None
