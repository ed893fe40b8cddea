"""Near-duplicate detection without any remote service: canonical tokens and their similarity.

The canonical form drops comments, docstrings and layout and renames identifiers in order of first
appearance (attributes after a dot and builtins keep their names), so two programs that differ only
by renaming or rewording are the same. Similarity is the overlap of the two programs' multisets of
token trigrams (linear time; one changed token among 700 gives about 0.996).
"""

from __future__ import annotations

import builtins
import collections
import hashlib
import keyword
import tokenize
from collections.abc import Collection
from typing import TYPE_CHECKING

from evolve.proposals.edits import python_tokens

if TYPE_CHECKING:  # only for annotations: the database is handed in
    from evolve.program import Program
    from evolve.storage.database import ProgramDatabase

__all__ = ["NoveltyFilter", "canonical_hash", "canonical_tokens", "similarity"]

_BUILTINS = set(dir(builtins))
_SKIP = (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER)
_LINE_START = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)


def canonical_tokens(code: str, tokens: list[tokenize.TokenInfo] | bool | None = True) -> tuple[str, ...]:
    """The program's tokens with comments, docstrings and local names normalised away (`tokens`:
    `evolve.proposals.edits.python_tokens(code)`, when known)."""
    if tokens is True:
        tokens = python_tokens(code)
    if not tokens:
        return tuple(line.strip() for line in code.splitlines() if line.strip())
    out: list[str] = []
    names: dict[str, str] = {}
    previous, line_start, skipping_string = "", True, False
    for tok in tokens:
        if tok.type in _SKIP:
            continue
        if tok.type == tokenize.STRING and line_start:
            skipping_string = True  # a bare string statement: a docstring
            continue
        if skipping_string and tok.type == tokenize.NEWLINE:
            skipping_string = False
            continue
        skipping_string = False
        text = tok.string
        if tok.type == tokenize.NAME and not keyword.iskeyword(text) and text not in _BUILTINS and previous != ".":
            text = names.setdefault(text, f"_{len(names)}")
        out.append(text)
        previous, line_start = tok.string, tok.type in _LINE_START
    return tuple(out)


def canonical_hash(code_or_tokens: str | tuple[str, ...]) -> str:
    """Hash of the canonical tokens (pass the tokens when you have them: tokenising is the cost)."""
    tokens = canonical_tokens(code_or_tokens) if isinstance(code_or_tokens, str) else code_or_tokens
    return hashlib.sha256("\x00".join(tokens).encode()).hexdigest()


def similarity(a: tuple[str, ...], b: tuple[str, ...], n: int = 3) -> float:
    """Shared token n-grams over the larger program's count (1.0: the same canonical program)."""
    if a == b:
        return 1.0
    grams_a = collections.Counter(zip(*(a[i:] for i in range(n))))
    grams_b = collections.Counter(zip(*(b[i:] for i in range(n))))
    larger = max(sum(grams_a.values()), sum(grams_b.values()))
    return sum((grams_a & grams_b).values()) / larger if larger else 0.0


class NoveltyFilter:
    """Rejects a child that is the same program as a known one up to names, comments and docstrings,
    or (with `threshold` < 1) too similar to its parent or an inspiration. Keeps the tokens of the
    programs it compared against, so a popular parent is tokenised once."""

    def __init__(self, database: ProgramDatabase, threshold: float = 1.0, cache_size: int = 4096) -> None:
        self._db = database
        self.threshold = threshold
        self._cache_size = cache_size
        self._tokens: dict[int, tuple[str, ...]] = {}

    def reason(self, tokens: tuple[str, ...], canonical: str, parent: Program,
               inspirations: list[Program], in_flight: Collection[str] = ()) -> str:
        """Why the child is too close to a known program, or "" when it is new enough."""
        twin = self._db.seen_canonical(canonical)
        if twin is not None:
            return f"same program as {twin.id} up to names, comments and docstrings"
        if canonical in in_flight:
            return "same program as one in flight up to names, comments and docstrings"
        if self.threshold < 1.0:
            for other in (parent, *inspirations):
                if other.id not in self._tokens:
                    if len(self._tokens) > self._cache_size:
                        self._tokens.clear()
                    self._tokens[other.id] = canonical_tokens(other.code)
                score = similarity(tokens, self._tokens[other.id])
                if score >= self.threshold:
                    return (f"near-duplicate of program {other.id} (similarity {score:.4f} >= "
                            f"novelty.threshold={self.threshold:g})")
        return ""
