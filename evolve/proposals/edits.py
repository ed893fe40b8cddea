"""EVOLVE-BLOCK regions, SEARCH/REPLACE diffs and full rewrites: turning a proposal into a child program.

An edit may change only the text between `# EVOLVE-BLOCK-START` and `# EVOLVE-BLOCK-END`. Everything
else in the program must come out unchanged, or the edit is refused with a reason that a later prompt
shows the proposer.

Replies are read as models write them: LF, CRLF or lone-CR line endings; fences of three or more
backticks or tildes, tagged python, py or python3 in any case or untagged, indented inside a list item,
opened after prose on the same line, closed at any indentation; SEARCH/REPLACE markers of five or more
characters, with trailing spaces, fenced or not, among any prose. What can be read more than one way is
refused: two different full programs, SEARCH text found in several places, a fence or an edit the reply
never closes. A reply that is a JSON object is a structured edit (`structured_edits`), asked for through
the schema that `evolve.proposals.structured` builds.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import textwrap
import tokenize
from dataclasses import dataclass
from typing import Any

from evolve.errors import EditError

__all__ = [
    "BLOCK_END",
    "BLOCK_START",
    "SearchReplace",
    "anchors",
    "apply_edits",
    "apply_proposal",
    "evolve_blocks",
    "format_diff",
    "is_structured",
    "normalized_hash",
    "parse_diff",
    "python_tokens",
    "rationale",
    "structured_edits",
]

BLOCK_START = "# EVOLVE-BLOCK-START"
BLOCK_END = "# EVOLVE-BLOCK-END"

# matched against whole lines, without their newline
_SEARCH = re.compile(r"(?P<indent>[ \t]*)<{5,}[ \t]*SEARCH\b.*", re.IGNORECASE)
_DIVIDER = re.compile(r"[ \t]*={5,}[ \t]*")
_REPLACE = re.compile(r"[ \t]*>{5,}[ \t]*REPLACE\b.*", re.IGNORECASE)
_FENCE = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*?)[ \t]*")
# "Here is the program: ```python": a python fence opened at the end of a line of prose
_LATE_FENCE = re.compile(
    r"(?P<indent>)[^`]*\S[ \t]*(?P<fence>`{3,})[ \t]*(?P<info>python3?|py3?)[ \t]*", re.IGNORECASE)
_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})


@dataclass(frozen=True)
class SearchReplace:
    """One edit: replace the exact text `search` (which must occur once) with `replace`.

    `indent` is the indentation of the edit's markers when every line of the edit carries it too (an
    edit written inside a list item): the edit is then also read with it removed, and must not mean
    two different things.
    """

    search: str
    replace: str
    indent: str = ""


@dataclass(frozen=True)
class _Fence:
    """A fenced block of a reply: its language tag (lower case, "" if none), its code, whether it ends."""

    tag: str
    code: str
    closed: bool


class _NotFound(EditError):
    """The SEARCH text does not occur; another reading of the same edit may explain it better."""


def evolve_blocks(code: str) -> list[tuple[int, int]]:
    """Return the (start, end) character spans of the text inside each EVOLVE-BLOCK.

    Raises EditError when markers are unbalanced. A program with no markers has one block: all of it.
    """
    spans: list[tuple[int, int]] = []
    start: int | None = None
    offset = 0
    for line in code.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(BLOCK_START):
            if start is not None:
                raise EditError("nested EVOLVE-BLOCK-START: close the block before opening another")
            start = offset + len(line)
        elif stripped.startswith(BLOCK_END):
            if start is None:
                raise EditError("EVOLVE-BLOCK-END without a matching EVOLVE-BLOCK-START")
            spans.append((start, offset))
            start = None
        offset += len(line)
    if start is not None:
        raise EditError("EVOLVE-BLOCK-START is never closed by EVOLVE-BLOCK-END")
    if not spans and BLOCK_START not in code:
        return [(0, len(code))]
    return spans


def _frozen_parts(code: str) -> list[str]:
    """The text outside the EVOLVE-BLOCKs, in order (what no edit may change), trailing spaces aside."""
    parts, last = [], 0
    for start, end in evolve_blocks(code):
        parts.append(code[last:start])
        last = end
    parts.append(code[last:])
    # a model that drops the final newline or a line's trailing spaces has not changed the code
    return ["\n".join(line.rstrip() for line in part.rstrip().splitlines()) for part in parts]


def _canonical(code: str) -> str:
    """The code with trailing spaces and trailing blank lines dropped, to compare programs."""
    return "\n".join(line.rstrip() for line in code.rstrip().splitlines())


def _lines(text: str) -> list[str]:
    """The lines of `text`, each with its newline; only "\\n" ends a line (not \\f, \\x85, ...)."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def _dedent(lines: list[str], indent: str) -> list[str] | None:
    """The lines with `indent` removed, or None unless it is set and every non-blank line starts with it."""
    if not indent or any(line.strip() and not line.startswith(indent) for line in lines):
        return None
    return [line[len(indent):] if line.startswith(indent) else line.lstrip(" \t") for line in lines]


def _closes(line: str, fence: str) -> bool:
    """Whether `line` closes a block opened by `fence`: the same character, at least as many, alone."""
    body = line.strip()
    return len(body) >= len(fence) and body == fence[0] * len(body)


def _scan(text: str) -> tuple[list[str], list[_Fence]]:
    """The reply's lines, with newlines normalised and each fence's body dedented, and its fences."""
    lines = _lines(text.replace("\r\n", "\n").replace("\r", "\n"))
    out: list[str] = []
    fences: list[_Fence] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        line = lines[i].rstrip("\n")
        opening = _FENCE.fullmatch(line) or _LATE_FENCE.fullmatch(line)
        i += 1
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            continue
        start = i
        while i < len(lines) and not _closes(lines[i], opening["fence"]):
            i += 1
        # a fence in a list item: its lines carry the item's indentation, which is not code
        body = _dedent(lines[start:i], opening["indent"])
        if body is None:
            body = lines[start:i]
        out += body
        closed = i < len(lines)
        if closed:
            out.append(lines[i])
            i += 1
        tag = re.match(r"\w*", opening["info"]).group().lower()
        fences.append(_Fence(tag, "".join(body), closed))
    return out, fences


def _parse_blocks(lines: list[str]) -> list[SearchReplace]:
    """The SEARCH/REPLACE edits in a reply's lines; EditError for one whose parts cannot be told apart."""
    edits: list[SearchReplace] = []
    part: list[str] | None = None  # the lines of the part being read, None outside an edit
    search: list[str] | None = None  # the SEARCH part once its ======= line has been read
    indent = ""
    for line in lines:
        body = line.rstrip("\n")
        n = len(edits) + 1
        marker = _SEARCH.fullmatch(body)
        if marker:
            if part is not None:
                raise EditError(f"edit {n} has no >>>>>>> REPLACE line before the next <<<<<<< SEARCH; "
                                "end every edit with >>>>>>> REPLACE")
            part, search, indent = [], None, marker["indent"]
        elif part is None:
            if _REPLACE.fullmatch(body):
                raise EditError("a >>>>>>> REPLACE line comes without a <<<<<<< SEARCH line before it; write "
                                "each edit as <<<<<<< SEARCH, the old lines, =======, the new lines, >>>>>>> REPLACE")
        elif search is None and _DIVIDER.fullmatch(body):
            search, part = part, []
        elif _REPLACE.fullmatch(body):
            if search is None:
                raise EditError(f"edit {n} has no ======= line between its SEARCH and REPLACE parts; write "
                                "<<<<<<< SEARCH, the old lines, =======, the new lines, >>>>>>> REPLACE")
            indented = _dedent(search + part, indent) is not None
            edits.append(SearchReplace("".join(search), "".join(part), indent if indented else ""))
            part = None
        else:
            part.append(line)
    if part is not None:
        raise EditError(f"edit {len(edits) + 1} is never closed: end every edit with a >>>>>>> REPLACE line, "
                        "and keep edits short enough to finish")
    return edits


def parse_diff(text: str) -> list[SearchReplace]:
    """Extract every SEARCH/REPLACE block from a proposal's text.

    Raises EditError for a block that is not closed or lacks its ======= line.
    """
    return _parse_blocks(_scan(text)[0])


def _locate(code: str, original: str, search: str, n: int) -> int:
    """Where the one occurrence of `search` in `code` starts; `original` is the code before any edit."""
    count = code.count(search)
    if count == 0:
        first = search.strip().splitlines()[0][:80]
        if search in original:
            raise EditError(f"edit {n}: SEARCH text (first line: {first!r}) was already changed by an earlier "
                            "edit; make one edit per region")
        raise _NotFound(f"edit {n}: SEARCH text not found in the program (first line: {first!r}); "
                        "copy the lines exactly, with their indentation")
    if count > 1:
        raise EditError(f"edit {n}: SEARCH text occurs {count} times; include more lines so it is unique")
    return code.index(search)


def apply_edits(code: str, edits: list[SearchReplace]) -> str:
    """Apply SEARCH/REPLACE edits in order; each search must occur exactly once, inside a block."""
    if not edits:
        raise EditError("the reply holds no SEARCH/REPLACE block")
    original = code
    for n, edit in enumerate(edits, 1):
        if not edit.search.strip():
            raise EditError(f"edit {n}: the SEARCH part is empty; quote the lines to replace exactly")
        readings = [(edit.search, edit.replace)]
        search, replace = _dedent(_lines(edit.search), edit.indent), _dedent(_lines(edit.replace), edit.indent)
        if search is not None and replace is not None:
            readings.append(("".join(search), "".join(replace)))
        found: list[tuple[int, str, str]] = []
        errors: list[EditError] = []
        for old, new in readings:
            try:
                found.append((_locate(code, original, old, n), old, new))
            except EditError as exc:
                errors.append(exc)
        if not found:
            raise next((e for e in errors if not isinstance(e, _NotFound)), errors[0])
        if len({code[:at] + new + code[at + len(old):] for at, old, new in found}) > 1:
            raise EditError(f"edit {n}: the SEARCH text matches one place as written and another without its "
                            "indentation; do not indent the edit's lines beyond the program's own")
        spans = evolve_blocks(code)
        if not all(any(s <= at and at + len(old) <= e for s, e in spans) for at, old, _ in found):
            raise EditError(f"edit {n}: SEARCH text lies outside the EVOLVE-BLOCKs; only code between "
                            f"{BLOCK_START} and {BLOCK_END} may change")
        at, old, new = found[0]
        code = code[:at] + new + code[at + len(old):]
    return code


def _whole_program(parent: str, fence: _Fence) -> str:
    """The fence's code as the child program; EditError when it cannot be the whole program."""
    if not fence.closed:
        # the reply ends inside the fence: the program is whole only if the code after its last block
        # came out intact, which a program without markers cannot show
        code = re.sub(r"\n\s*\Z", "", fence.code) + "\n"
        try:
            whole = BLOCK_START in parent and _frozen_parts(code) == _frozen_parts(parent)
        except EditError:
            whole = False
        if not whole:
            raise EditError("the fenced program is never closed, so where it ends is unclear: end it with a ``` "
                            "line, and keep the reply short enough to finish")
        return code
    if BLOCK_START in parent and BLOCK_START not in fence.code:
        raise EditError("the rewritten program dropped the EVOLVE-BLOCK markers; keep them and the "
                        "code outside them unchanged")
    if _frozen_parts(fence.code) != _frozen_parts(parent):
        raise EditError("the edit changed code outside the EVOLVE-BLOCKs (or their markers); only the "
                        "code between the markers may change")
    return fence.code


def _rewrite(parent: str, fences: list[_Fence]) -> str:
    """The one full program among the reply's python fences; a copy of the parent counts only alone."""
    fences = [fence for fence in fences if fence.tag in _PYTHON_TAGS]
    if not fences:
        raise EditError("the reply holds neither SEARCH/REPLACE blocks nor a ```python fenced program")
    programs: dict[str, str] = {}
    refusals: list[tuple[int, EditError]] = []
    for fence in fences:
        try:
            code = _whole_program(parent, fence)
        except EditError as exc:
            refusals.append((len(fence.code), exc))
        else:
            programs.setdefault(_canonical(code), code)
    if not programs:
        raise max(refusals, key=lambda refusal: refusal[0])[1]
    new = [code for key, code in programs.items() if key != _canonical(parent)]
    if len(new) > 1:
        raise EditError(f"the reply holds {len(new)} different full programs; give exactly one ```python "
                        "block with the whole program")
    return new[0] if new else next(iter(programs.values()))


# Structured replies (see evolve.proposals.structured for their schema): a JSON object of edits, each naming
# an EVOLVE-BLOCK, the first and last of its lines to replace (anchors: lines without their indentation)
# and the replacement, turned into the SearchReplace edits a text diff gives.

_JSON_FENCE = re.compile(r"\A\s*(`{3,}|~{3,})[ \t]*(?:json)?[ \t]*\n(?P<body>.*?)\n[ \t]*\1[ \t]*\Z",
                         re.DOTALL | re.IGNORECASE)


def anchors(lines: list[str]) -> list[str]:
    """The lines an edit may name in this block: non-blank, stripped, found there once, and free of quotes
    and backslashes (llama-cpp-python's schema-to-grammar converter mis-escapes them in an enum, and its
    server then fails; a span can still cover such lines)."""
    stripped = [line.strip() for line in lines]
    return [text for text in dict.fromkeys(stripped)
            if text and stripped.count(text) == 1 and '"' not in text and "\\" not in text]


def is_structured(text: str) -> bool:
    """Whether a reply is a JSON object (bare or in a json fence) rather than text edits."""
    match = _JSON_FENCE.match(text)
    return (match["body"] if match else text).lstrip().startswith("{")


def _read_json(text: str) -> dict[str, Any]:
    """The reply's JSON object; EditError when it does not parse. A reply cut off inside the last edit's
    rationale (the only free text after the code) still counts: its edits are whole."""
    match = _JSON_FENCE.match(text)
    body = (match["body"] if match else text).strip()
    try:
        reply = json.loads(body, strict=False)  # raw newlines and tabs in strings: some grammars allow them
    except ValueError as exc:
        try:
            reply = json.loads(body + '"}]}', strict=False)
            if not isinstance(reply, dict) or "rationale" not in reply["edits"][-1]:
                raise ValueError
        except (ValueError, KeyError, IndexError, TypeError):
            raise EditError(f"the JSON reply does not parse ({exc}); reply with one JSON object of edits, "
                            "short enough to finish") from None
    if not isinstance(reply, dict):
        raise EditError(f"the JSON reply is a {type(reply).__name__}, not an object with an `edits` list")
    return reply


def rationale(text: str) -> str:
    """The rationales of a structured reply's edits, joined by `; ` ('' when it has none or does not parse)."""
    try:
        edits = _read_json(text).get("edits")
    except EditError:
        return ""
    return "; ".join(str(e["rationale"]).strip() for e in edits if isinstance(e, dict) and e.get("rationale")) \
        if isinstance(edits, list) else ""


def _indent(lines: list[str]) -> str:
    """The indentation that every non-blank line shares."""
    prefixes = [line[:len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip()]
    common = prefixes[0] if prefixes else ""
    for prefix in prefixes[1:]:
        while not prefix.startswith(common):
            common = common[:-1]
    return common


def _replacement(text: str, indent: str) -> str:
    """The replacement code, re-indented so its least indented lines stand where the replaced ones did."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not text.strip():
        return ""
    return textwrap.indent(textwrap.dedent(text), indent) + "\n"


def _field(edit: dict[str, Any], key: str, kind: type, n: int) -> Any:
    value = edit.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise EditError(f"structured edit {n}: `{key}` is {'missing' if value is None else repr(value)[:60]}; "
                        f"give it as a JSON {'integer' if kind is int else 'string'}")
    return value


def _span(block: list[str], code: str, first: int, last: int) -> tuple[int, int]:
    """Lines first..last of the block, widened within it until their text occurs once in `code`."""
    while code.count("".join(block[first:last + 1])) > 1:
        if first > 0:
            first -= 1
        elif last < len(block) - 1:
            last += 1
        else:
            break
    return first, last


def structured_edits(code: str, reply: dict[str, Any]) -> list[SearchReplace]:
    """The SEARCH/REPLACE edits of `code` that a structured reply describes; EditError naming what is wrong."""
    edits = reply.get("edits")
    if not isinstance(edits, list) or not edits:
        raise EditError("the JSON reply has no `edits` list; give at least one edit")
    blocks = [code[start:end].splitlines(keepends=True) for start, end in evolve_blocks(code)]
    out: list[SearchReplace] = []
    for n, edit in enumerate(edits, 1):
        if not isinstance(edit, dict):
            raise EditError(f"structured edit {n} is not an object with block, first_line, last_line and replacement")
        number = _field(edit, "block", int, n)
        if not 1 <= number <= len(blocks):
            raise EditError(f"structured edit {n}: block={number}, but the program has {len(blocks)} EVOLVE-BLOCK"
                            f"{'s' if len(blocks) != 1 else ''}; number them from 1")
        lines = blocks[number - 1]
        stripped = [line.strip() for line in lines]
        names = anchors(lines)
        found = []
        for key in ("first_line", "last_line"):
            text = _field(edit, key, str, n).strip()
            if text not in names:
                why = "occurs more than once in" if text and stripped.count(text) > 1 else "is not a line of"
                raise EditError(f"structured edit {n}: {key} {text[:80]!r} {why} EVOLVE-BLOCK {number}; "
                                "name a line that occurs there once, as written")
            found.append(stripped.index(text))
        first, last = sorted(found)  # two anchors name one span, whichever comes first
        replacement = _replacement(_field(edit, "replacement", str, n), _indent(lines[first:last + 1]))
        start, end = _span(lines, code, first, last)
        new = "".join(lines[start:first]) + replacement + "".join(lines[last + 1:end + 1])
        out.append(SearchReplace("".join(lines[start:end + 1]), new))
    return out



def apply_proposal(parent: str, text: str) -> str:
    """Turn a proposal into the child program: SEARCH/REPLACE diffs, or else a full rewrite in a fence.

    A reply that is a JSON object is a structured edit (`evolve.proposals.structured`), whichever format
    was asked for (`structured_edits`). Raises EditError with a one-line reason meant for the next prompt.
    """
    if is_structured(text):
        child = apply_edits(parent, structured_edits(parent, _read_json(text)))
    else:
        lines, fences = _scan(text)
        edits = _parse_blocks(lines)
        child = apply_edits(parent, edits) if edits else _rewrite(parent, fences)
    if _frozen_parts(child) != _frozen_parts(parent):
        raise EditError("the edit changed code outside the EVOLVE-BLOCKs (or their markers); only the "
                        "code between the markers may change")
    if child == parent:
        raise EditError("the edit leaves the program unchanged")
    return child


def format_diff(edits: list[SearchReplace]) -> str:
    """Render edits in the SEARCH/REPLACE format that `parse_diff` reads."""
    return "".join(f"<<<<<<< SEARCH\n{e.search}=======\n{e.replace}>>>>>>> REPLACE\n" for e in edits)


def python_tokens(code: str) -> list[tokenize.TokenInfo] | None:
    """The code's tokens, or None when it does not tokenize; tokenising is the cost of both hashes
    (`normalized_hash`, `evolve.proposals.novelty.canonical_tokens`), so one pass can serve them."""
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def normalized_hash(code: str, tokens: list[tokenize.TokenInfo] | bool | None = True) -> str:
    """Hash of the code's tokens, ignoring comments, blank lines and spacing within lines.

    Two programs that differ only in comments or blank lines get the same hash (dedup). Code that
    does not tokenize is hashed by its stripped lines. `tokens`: `python_tokens(code)`, when known.
    """
    if tokens is True:
        tokens = python_tokens(code)
    if tokens:
        canonical = repr([(tok.type, tok.string) for tok in tokens
                          if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING)])
    else:
        canonical = "\n".join(line.rstrip() for line in code.splitlines() if line.strip())
    return hashlib.sha256(canonical.encode()).hexdigest()
