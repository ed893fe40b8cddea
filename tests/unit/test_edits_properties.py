"""Property tests of reading replies: every way models write an edit gives the same child program, and
what is ambiguous or broken is refused with a one-line EditError, never applied wrongly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

from evolve.errors import EditError
from evolve.proposals.edits import BLOCK_END, BLOCK_START, apply_proposal, evolve_blocks

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {name: (ROOT / "problems" / name / "initial.py").read_text()
            for name in ("circle_packing", "warehouse_tsp")}

# deterministic (derandomized, no example database), and a few seconds per property on a slow machine
CHECKS = settings(derandomize=True, database=None, deadline=None, max_examples=120,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

PROSE = [
    "I'll make the search step more careful.",
    "## Change\nThe penalty grows too fast.",
    "Summary\n=======\nA setext heading whose underline is not a divider.",
    "Run it with:\n```bash\npython initial.py\n```",
    "For instance:\n```python\nx = 1\n```\nis a snippet, not the program.",
    "- first, a bullet\n- then `inline code` and ```inline fences``` in a sentence",
    "~~~\nplain output\n~~~",
]
TAGS = ["python", "Python", "PYTHON", "py", "Py", "python3", "Python3", ""]


@dataclass(frozen=True)
class Look:
    """How a reply presents a block: its fence (None: no fence) and the fence's indentation."""

    fence: str | None
    tag: str
    space: str  # between the fence and its tag
    trailing: str  # after the fence lines
    indent: str  # every line's, as inside a list item
    blank: str  # what a blank line carries: "" or the indentation
    close_indent: str  # the closing fence's extra indentation
    closed: bool
    lead: str = ""  # prose on the opening fence's line, before the fence

    def wrap(self, body: str) -> str:
        """The body in this look's fence (if any), indented."""
        lines = body.splitlines(keepends=True)
        if self.fence is not None:
            opening = f"{self.lead}{self.fence}{self.space}{self.tag}{self.trailing}\n"
            closing = [f"{self.close_indent}{self.fence}{self.trailing}\n"] if self.closed else []
            lines = [opening, *lines, *closing]
        return "".join(self.indent + line if line.strip() else self.blank + line for line in lines)

    def classes(self) -> list[str]:
        """The variant classes this look covers, one per dimension, for Hypothesis' statistics."""
        if self.fence is None:
            return ["fence: none"]
        spaces = {"": "none", "\t": "a tab"}
        return [f"fence: {self.fence}", f"tag: {self.tag or 'none'}", f"space before tag: {bool(self.space)}",
                f"trailing space on fence lines: {bool(self.trailing)}",
                f"indentation: {spaces.get(self.indent, f'{len(self.indent)} spaces')}",
                f"blank lines indented: {bool(self.blank)}", f"closing fence indented: {bool(self.close_indent)}",
                f"fence closed: {self.closed}", f"prose before the fence on its line: {bool(self.lead)}"]


@st.composite
def looks(draw, fenced: bool | None = None, closed: bool = True) -> Look:
    """A presentation; `fenced` None draws whether to fence. Only a fenced block is indented."""
    if fenced is None:
        fenced = draw(st.booleans())
    if not fenced:
        return Look(None, "", "", "", "", "", "", True)
    indent = draw(st.sampled_from(["", "", "  ", "   ", "    ", "\t"]))
    fence, tag = draw(st.sampled_from(["```", "````", "~~~", "~~~~"])), draw(st.sampled_from(TAGS))
    # "Here it is: ```python" opens a fence only with backticks and a python tag
    lead = draw(st.sampled_from(["", "Here it is: "])) if fence[0] == "`" and tag and not indent else ""
    return Look(fence=fence, tag=tag, space=draw(st.sampled_from(["", " "])),
                trailing=draw(st.sampled_from(["", " ", "\t "])), indent=indent,
                blank=draw(st.sampled_from(["", indent])), close_indent=draw(st.sampled_from(["", "", "    "])),
                closed=closed, lead=lead)


@st.composite
def endings(draw, text: str) -> str:
    """`text` with its newlines as LF, CRLF, lone CR, or a mix line by line."""
    style = draw(st.sampled_from(["LF", "CRLF", "CR", "mixed"]))
    event(f"line endings: {style}")
    lines = text.split("\n")
    if style != "mixed":
        return {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}[style].join(lines)
    cycle = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=5))
    out, previous = [], ""
    for k, line in enumerate(lines[:-1]):
        ending = cycle[k % len(cycle)]
        if previous == "\r" and not line and ending == "\n":
            ending = "\r\n"  # a lone CR then an empty LF line would read as one CRLF
        out.append(line + ending)
        previous = ending
    return "".join(out) + lines[-1]


@st.composite
def prose(draw) -> tuple[str, str]:
    """Text before and after the blocks."""
    before = draw(st.lists(st.sampled_from(PROSE), max_size=2))
    after = draw(st.lists(st.sampled_from(PROSE), max_size=2))
    event(f"prose: {len(before)} before, {len(after)} after")
    return "".join(p + "\n\n" for p in before), "".join("\n" + p + "\n" for p in after)


def _line_spans(code: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, at = [], start
    for line in code[start:end].splitlines(keepends=True):
        spans.append((at, at + len(line)))
        at += len(line)
    return spans


@st.composite
def regions(draw, code: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    """A run of whole lines within one of `spans`, grown until it is unique in the program."""
    start, end = draw(st.sampled_from(spans))
    lines = _line_spans(code, start, end)
    i = draw(st.integers(0, len(lines) - 1))
    for j in range(min(len(lines), i + draw(st.integers(1, 4))), len(lines) + 1):
        a, b = lines[i][0], lines[j - 1][1]
        if code[a:b].strip() and code.count(code[a:b]) == 1:
            return a, b
    reject()


@st.composite
def replacements(draw, old: str) -> str:
    """New lines for `old`: lines kept, dropped, retuned, commented, or added."""
    out = []
    for line in old.splitlines(keepends=True):
        indent = line[: len(line) - len(line.lstrip())] if line.strip() else "    "
        how = draw(st.sampled_from(["keep", "keep", "drop", "number", "comment", "add"]))
        if how == "keep" or (how in ("number", "comment") and not line.strip()):
            out.append(line)
        elif how == "number":
            out.append(re.sub(r"\d+", str(draw(st.integers(0, 999))), line, count=1)
                       if re.search(r"\d", line) else line.rstrip("\n") + "  # retuned\n")
        elif how == "comment":
            out.append(line.rstrip("\n") + "  # tuned\n")
        elif how == "add":
            out += [line, f"{indent}tuned_{draw(st.integers(0, 99))} = {draw(st.integers(0, 9))}\n"]
    if "".join(out) == old:
        out.append(f"    tuned_{draw(st.integers(0, 99))} = 0\n")
    return "".join(out)


@dataclass(frozen=True)
class Edit:
    """Known-good edits of a real program and the child they make."""

    name: str
    parent: str
    pairs: tuple[tuple[str, str], ...]  # (search, replace) in the order the reply gives them
    child: str


@st.composite
def known_edits(draw, max_edits: int = 2, name: str | None = None) -> Edit:
    """One or more edits inside the EVOLVE-BLOCKs of circle_packing or warehouse_tsp, each unambiguous."""
    name = name or draw(st.sampled_from(sorted(PROGRAMS)))
    code = PROGRAMS[name]
    chosen: list[tuple[int, int, str]] = []
    for _ in range(draw(st.integers(1, max_edits))):
        a, b = draw(regions(code, evolve_blocks(code)))
        if any(a < d and c < b for c, d, _ in chosen):
            continue
        chosen.append((a, b, draw(replacements(code[a:b]))))
    child, step = code, code
    for a, b, new in sorted(chosen, reverse=True):
        child = child[:a] + new + child[b:]
    for a, b, new in chosen:  # as the reply gives them, each must still be found once
        if step.count(code[a:b]) != 1:
            reject()
        step = step.replace(code[a:b], new)
    if step != child:
        reject()
    return Edit(name, code, tuple((code[a:b], new) for a, b, new in chosen), child)


@st.composite
def diff_blocks(draw, pairs: tuple[tuple[str, str], ...]) -> str:
    """SEARCH/REPLACE blocks for `pairs`, markers of 5 to 9 characters, spaced and cased variously."""
    out = []
    for search, replace in pairs:
        widths = [draw(st.integers(5, 9)) for _ in range(3)]
        gap = draw(st.sampled_from(["", " "]))
        word = draw(st.sampled_from([("SEARCH", "REPLACE"), ("SEARCH", "REPLACE"), ("search", "replace")]))
        trail = [draw(st.sampled_from(["", " ", "  ", "\t"])) for _ in range(3)]
        for marker, width in zip("<=>", widths):
            event(f"marker {marker * 3}: {width} wide")
        event(f"marker word: {word[0]}")
        event(f"space between marker and word: {bool(gap)}")
        event(f"trailing whitespace on a marker line: {any(trail)}")
        out.append(f"{'<' * widths[0]}{gap}{word[0]}{trail[0]}\n{search}{'=' * widths[1]}{trail[1]}\n"
                   f"{replace}{'>' * widths[2]}{gap}{word[1]}{trail[2]}\n")
    return "".join(out)


@st.composite
def diff_replies(draw, edit: Edit) -> str:
    """A reply holding `edit` as SEARCH/REPLACE blocks, presented in one of the ways models write them."""
    blocks = draw(diff_blocks(edit.pairs))
    look = draw(looks())
    for name in ["diff", *look.classes()]:
        event(name)
    before, after = draw(prose())
    if draw(st.booleans()):  # the prompt's program echoed back first: not a competing rewrite
        before += "The current program:\n```python\n" + edit.parent + "```\n\n"
        event("parent echoed")
    return draw(endings(before + look.wrap(blocks) + after))


@st.composite
def rewrite_replies(draw, edit: Edit) -> str:
    """A reply holding the child as a whole program in a fence; unclosed only at the end of the reply."""
    closed = draw(st.booleans()) or draw(st.booleans())
    look = draw(looks(fenced=True, closed=closed))
    for name in ["rewrite", *look.classes()]:
        event(name)
    before, after = draw(prose())
    if not closed:
        after = draw(st.sampled_from(["", "\n", "\n\n  \n"]))
    if draw(st.booleans()):
        before = "The current program:\n```python\n" + edit.parent + "```\nThe new one:\n" + before
        event("parent echoed")
    return draw(endings(before + look.wrap(edit.child) + after))


def _refused(parent: str, reply: str, *reasons: str) -> None:
    """Assert the reply is refused with one line naming one of `reasons`."""
    try:
        child = apply_proposal(parent, reply)
    except EditError as exc:
        message = str(exc)
        assert "\n" not in message and message
        assert any(reason in message for reason in reasons), message
        return
    raise AssertionError(f"applied instead of refused: {child[:200]!r}")


def _frozen_intact(parent: str, child: str) -> bool:
    """Whether the code outside the blocks is the same, up to whitespace (a check independent of edits.py)."""

    def frozen(code: str) -> list[str]:
        spans, parts, last = evolve_blocks(code), [], 0
        for start, end in spans:
            parts.append(code[last:start])
            last = end
        return [" ".join(part.split()) for part in parts + [code[last:]]]

    return frozen(child) == frozen(parent)


@CHECKS
@given(st.data())
def test_every_way_of_writing_edits_gives_the_same_child(data):
    edit = data.draw(known_edits())
    reply = data.draw(diff_replies(edit))
    assert apply_proposal(edit.parent, reply) == edit.child


@CHECKS
@given(st.data())
def test_every_way_of_writing_a_whole_program_gives_the_same_child(data):
    edit = data.draw(known_edits())
    reply = data.draw(rewrite_replies(edit))
    assert apply_proposal(edit.parent, reply) == edit.child


@settings(CHECKS, max_examples=60)
@given(st.data())
def test_edits_and_rewrites_of_the_same_change_agree(data):
    edit = data.draw(known_edits(max_edits=1))
    assert apply_proposal(edit.parent, data.draw(diff_replies(edit))) == \
        apply_proposal(edit.parent, data.draw(rewrite_replies(edit)))


def _repeated_suffixes(code: str) -> list[str]:
    """Line endings (a suffix of a line inside a block, with its newline) found more than once."""
    found = set()
    for start, end in evolve_blocks(code):
        for a, b in _line_spans(code, start, end):
            line = code[a:b]
            for k in range(len(line) - 4):
                if line[k:].strip() and code.count(line[k:]) > 1:
                    found.add(line[k:])
                    break
    return sorted(found)


REPEATED = {name: _repeated_suffixes(code) for name, code in PROGRAMS.items()}


def _frozen_spans(code: str) -> list[tuple[int, int]]:
    spans, last = [], 0
    for start, end in evolve_blocks(code):
        spans.append((last, start))
        last = end
    return [*spans, (last, len(code))]


BROKEN = ["repeated", "outside", "straddle", "not found", "empty", "same region twice", "no divider",
          "stray replace", "search in search", "cut edit", "two programs", "rewrite outside", "markers dropped",
          "cut program", "unclosed, no markers"]


@st.composite
def bad_replies(draw, kind: str) -> tuple[str, str, tuple[str, ...]]:
    """(parent, reply, reasons one of which the refusal must name) for a broken or ambiguous reply."""
    edit = draw(known_edits(max_edits=1))
    parent, ((search, replace),) = edit.parent, edit.pairs
    diff = None
    if kind == "repeated":
        diff = [(draw(st.sampled_from(REPEATED[edit.name])), "pass\n")], ("occurs",)
    elif kind == "outside":
        a, b = draw(regions(parent, _frozen_spans(parent)))
        diff = [(parent[a:b], "pass\n")], ("outside the EVOLVE-BLOCKs",)
    elif kind == "straddle":
        marker = draw(st.sampled_from([BLOCK_START, BLOCK_END]))
        at = parent.index(marker)
        a = parent.rfind("\n", 0, at - 1) + 1
        b = parent.index("\n", at) + 1
        b = parent.index("\n", b) + 1 if marker == BLOCK_START else b
        diff = [(parent[a:b], "pass\n")], ("outside the EVOLVE-BLOCKs",)
    elif kind == "not found":
        k = draw(st.integers(0, len(search) - 2))
        diff = [(search[:k] + "\u00a7" + search[k:], replace)], ("not found",)
    elif kind == "empty":
        diff = [(draw(st.sampled_from(["", "\n", "   \n"])), replace)], ("empty",)
    elif kind == "same region twice":
        if search in replace:  # then the second edit finds the text again, in the first one's lines
            reject()
        diff = [(search, replace), (search, replace + "    pass\n")], ("already changed",)
    if diff is not None:
        pairs, reasons = diff
        body = draw(diff_blocks(tuple(pairs)))
    elif kind in ("no divider", "stray replace", "search in search"):
        body = draw(diff_blocks(edit.pairs))
        lines = body.splitlines(keepends=True)
        if kind == "no divider":
            lines = [line for line in lines if not line.startswith("=====")]
            reasons = ("no ======= line",)
        elif kind == "stray replace":
            lines = lines[-1:] + lines
            reasons = ("without a <<<<<<< SEARCH",)
        else:
            lines = lines[:1] + lines
            reasons = ("no >>>>>>> REPLACE line before the next",)
        body = "".join(lines)
    elif kind == "cut edit":
        # the reply ends inside its last edit, from the SEARCH marker to the word REPLACE, inside any
        # fence it opened: the complete edits before it must not be applied either
        head = draw(diff_blocks(draw(known_edits(name=edit.name)).pairs))
        last = draw(diff_blocks(edit.pairs))
        first_line = last[: last.index("\n")]
        final_line = last[last.rstrip("\n").rindex("\n") + 1:]
        word_at = len(last) - len(final_line) + final_line.lower().index("replace")
        body = head + last[: draw(st.integers(len(first_line.rstrip()), word_at))]
        look = draw(looks(closed=False))
        return parent, draw(endings(look.wrap(body))), ("is never closed: end every edit with a >>>>>>> REPLACE line",)
    else:
        other = draw(known_edits(max_edits=1, name=edit.name).filter(lambda e: e.child != edit.child))
        if kind == "two programs":
            first, second = draw(looks(fenced=True)), draw(looks(fenced=True))
            reply = first.wrap(edit.child) + "\nOr else:\n" + second.wrap(other.child)
            return parent, draw(endings(reply)), ("2 different full programs",)
        look = draw(looks(fenced=True))
        if kind == "rewrite outside":
            a, b = draw(regions(parent, _frozen_spans(parent)))
            program = edit.child.replace(parent[a:b], parent[a:b].rstrip("\n") + "  # moved\n")
            return parent, draw(endings(look.wrap(program))), ("outside the EVOLVE-BLOCKs",)
        if kind == "unclosed, no markers":
            # without markers nothing shows where the program ends, even when the reply ends right after it
            (start, end), *_ = evolve_blocks(parent)
            child = edit.child[start: len(edit.child) - (len(parent) - end)]
            reply = draw(looks(fenced=True, closed=False)).wrap(child)
            return parent[start:end], draw(endings(reply)), ("fenced program is never closed",)
        if kind == "markers dropped":
            (start, end), *_ = evolve_blocks(edit.child)
            return parent, draw(endings(look.wrap(edit.child[start:end]))), ("dropped the EVOLVE-BLOCK",)
        # cut program: the reply ends before the program's last character
        reply = look.wrap(edit.child)
        last = reply.rstrip().rfind(look.fence) if look.closed else len(reply.rstrip())
        last = len(reply[:last].rstrip())
        reply = reply[: draw(st.integers(0, last - 1))]
        return parent, draw(endings(reply)), ("fenced program is never closed", "neither SEARCH/REPLACE")
    look = draw(looks())
    before, after = draw(prose())
    reply = before + look.wrap(body) + after
    return parent, draw(endings(reply)), reasons


@pytest.mark.parametrize("kind", BROKEN)
@settings(CHECKS, max_examples=20)
@given(st.data())
def test_broken_or_ambiguous_replies_are_refused_with_a_reason(kind, data):
    parent, reply, reasons = data.draw(bad_replies(kind))
    _refused(parent, reply, *reasons)


def _mangle(reply: str, how: str, k: int, extra: str) -> str:
    lines = reply.splitlines(keepends=True)
    k %= max(1, len(lines))
    if how == "drop line":
        return "".join(lines[:k] + lines[k + 1:])
    if how == "repeat line":
        return "".join(lines[: k + 1] + lines[k:])
    if how == "insert line":
        return "".join(lines[:k] + [extra] + lines[k:])
    if how == "swap lines":
        j = (k + 1) % len(lines)
        lines[k], lines[j] = lines[j], lines[k]
        return "".join(lines)
    return reply[: len(reply) * k // max(1, len(lines))]


@settings(CHECKS, max_examples=200)
@given(st.data())
def test_a_mangled_reply_is_refused_or_changes_only_the_blocks(data):
    edit = data.draw(known_edits())
    reply = data.draw(st.one_of(diff_replies(edit), rewrite_replies(edit)))
    how = data.draw(st.sampled_from(["drop line", "repeat line", "insert line", "swap lines", "cut"]))
    extra = data.draw(st.sampled_from(["<<<<<<< SEARCH\n", "=======\n", ">>>>>>> REPLACE\n", "```\n", "~~~\n",
                                       "```python\n", BLOCK_START + "\n", BLOCK_END + "\n", "\r\n", "\r"]))
    event(f"mangled: {how}")
    mangled = _mangle(reply, how, data.draw(st.integers(0, 10_000)), extra)
    try:
        child = apply_proposal(edit.parent, mangled)
    except EditError as exc:
        assert "\n" not in str(exc)
        event("outcome: refused")
        return
    event("outcome: applied")
    assert child != edit.parent and _frozen_intact(edit.parent, child)


FRAGMENTS = ["<<<<<<< SEARCH", "<<<<< search  ", "=======", "=====\t", ">>>>>>> REPLACE", ">>>>>>>>> REPLACE ",
             "```", "```python", "``` Py", "````", "~~~", "~~~python3", "   ```", BLOCK_START, BLOCK_END, "",
             "    return x", "pass", "Here is the change:", "\r", "\t", "    "]


@settings(CHECKS, max_examples=200)
@given(st.sampled_from(sorted(PROGRAMS)),
       st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=30),
       st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=3))
def test_any_text_is_refused_with_an_edit_error_or_changes_only_the_blocks(name, pieces, newlines):
    parent = PROGRAMS[name]
    lines = [*pieces, *parent.splitlines()[10:30]] if len(pieces) % 3 == 0 else pieces
    reply = "".join(line + newlines[k % len(newlines)] for k, line in enumerate(lines))
    try:
        child = apply_proposal(parent, reply)
    except EditError as exc:
        assert "\n" not in str(exc)
        event("outcome: refused")
        return
    event("outcome: applied")
    assert child != parent and _frozen_intact(parent, child)
