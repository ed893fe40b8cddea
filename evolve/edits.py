"""EVOLVE-BLOCK regions, SEARCH/REPLACE diffs and full rewrites: turning a proposal into a child program.

An edit may change only the text between `# EVOLVE-BLOCK-START` and `# EVOLVE-BLOCK-END`. Everything
else in the program must come out unchanged, or the edit is refused with a reason that a later prompt
shows the proposer.
"""

from __future__ import annotations

import hashlib
import io
import re
import tokenize
from dataclasses import dataclass

from evolve.errors import EditError

__all__ = [
    "BLOCK_START",
    "BLOCK_END",
    "SearchReplace",
    "evolve_blocks",
    "parse_diff",
    "apply_edits",
    "apply_proposal",
    "format_diff",
    "normalized_hash",
]

BLOCK_START = "# EVOLVE-BLOCK-START"
BLOCK_END = "# EVOLVE-BLOCK-END"

_DIFF = re.compile(
    r"^<{5,}\s*SEARCH[^\n]*\n(?P<search>.*?)^={5,}[ \t]*\n(?P<replace>.*?)^>{5,}\s*REPLACE[^\n]*$",
    re.DOTALL | re.MULTILINE,
)
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class SearchReplace:
    """One edit: replace the exact text `search` (which must occur once) with `replace`."""

    search: str
    replace: str


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


def parse_diff(text: str) -> list[SearchReplace]:
    """Extract every SEARCH/REPLACE block from a proposal's text."""
    return [SearchReplace(m["search"], m["replace"]) for m in _DIFF.finditer(text)]


def apply_edits(code: str, edits: list[SearchReplace]) -> str:
    """Apply SEARCH/REPLACE edits in order; each search must occur exactly once, inside a block."""
    if not edits:
        raise EditError("the reply holds no SEARCH/REPLACE block")
    for n, edit in enumerate(edits, 1):
        if not edit.search.strip():
            raise EditError(f"edit {n}: the SEARCH part is empty; quote the lines to replace exactly")
        count = code.count(edit.search)
        if count == 0:
            first = edit.search.strip().splitlines()[0][:80]
            raise EditError(f"edit {n}: SEARCH text not found in the program (first line: {first!r}); "
                            "copy the lines exactly, with their indentation")
        if count > 1:
            raise EditError(f"edit {n}: SEARCH text occurs {count} times; include more lines so it is unique")
        at = code.index(edit.search)
        if not any(s <= at and at + len(edit.search) <= e for s, e in evolve_blocks(code)):
            raise EditError(f"edit {n}: SEARCH text lies outside the EVOLVE-BLOCKs; only code between "
                            f"{BLOCK_START} and {BLOCK_END} may change")
        code = code[:at] + edit.replace + code[at + len(edit.search):]
    return code


def apply_proposal(parent: str, text: str) -> str:
    """Turn a proposal into the child program: SEARCH/REPLACE diffs, or else a full rewrite in a fence.

    Raises EditError with a reason meant for the next prompt.
    """
    edits = parse_diff(text)
    if edits:
        child = apply_edits(parent, edits)
    else:
        fences = [m["code"] for m in _FENCE.finditer(text)]
        if not fences:
            raise EditError("the reply holds neither SEARCH/REPLACE blocks nor a ```python fenced program")
        child = max(fences, key=len)
        if BLOCK_START in parent and BLOCK_START not in child:
            raise EditError("the rewritten program dropped the EVOLVE-BLOCK markers; keep them and the "
                            "code outside them unchanged")
    if _frozen_parts(child) != _frozen_parts(parent):
        raise EditError("the edit changed code outside the EVOLVE-BLOCKs (or their markers); only the "
                        "code between the markers may change")
    if child == parent:
        raise EditError("the edit leaves the program unchanged")
    return child


def format_diff(edits: list[SearchReplace]) -> str:
    """Render edits in the SEARCH/REPLACE format that `parse_diff` reads."""
    return "".join(f"<<<<<<< SEARCH\n{e.search}=======\n{e.replace}>>>>>>> REPLACE\n" for e in edits)


def normalized_hash(code: str) -> str:
    """Hash of the code's tokens, ignoring comments, blank lines and spacing within lines.

    Two programs that differ only in comments or blank lines get the same hash (dedup). Code that
    does not tokenize is hashed by its stripped lines.
    """
    try:
        tokens = [
            (tok.type, tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(code).readline)
            if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING)
        ]
        canonical = repr(tokens)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        canonical = "\n".join(line.rstrip() for line in code.splitlines() if line.strip())
    return hashlib.sha256(canonical.encode()).hexdigest()
