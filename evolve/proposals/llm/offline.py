"""The offline proposer: program mutations inside EVOLVE-BLOCKs, sent as SEARCH/REPLACE text.

No network, no key. Each proposal makes one or a few edits: a numeric constant perturbed, an operator
swapped for a related one, or a run of lines taken from an inspiration (statement-level crossover).
"""

from __future__ import annotations

import difflib
import io
import math
import random
import tokenize

from evolve.proposals.edits import SearchReplace, apply_edits, evolve_blocks, format_diff
from evolve.errors import EditError, ProposerError
from evolve.proposals.llm.base import Prompt, Proposal

__all__ = ["OfflineMutator"]

_SWAPS = {"+": "-", "-": "+", "*": "/", "/": "*", "<": "<=", "<=": "<", ">": ">=", ">=": ">",
          "min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum"}


def _line_starts(code: str) -> list[int]:
    starts, total = [0], 0
    for line in code.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


class OfflineMutator:
    """Mutates the parent's EVOLVE-BLOCKs. Deterministic for a given seed and sequence of prompts.

    Args:
        seed: seeds the choice of mutations.
        max_edits: each proposal makes between 1 and this many edits.
        weights: relative weights of `constant`, `operator` and `crossover` mutations.
    """

    name = "offline-mutator"

    def __init__(self, seed: int = 0, max_edits: int = 2,
                 weights: dict[str, float] | None = None) -> None:
        self._rng = random.Random(seed)
        self.max_edits = max(1, max_edits)
        self.weights = weights or {"constant": 0.65, "operator": 0.1, "crossover": 0.25}

    async def propose(self, prompt: Prompt) -> Proposal:
        """Return one to `max_edits` edits of the parent as SEARCH/REPLACE text."""
        code = prompt.parent.code
        edits: list[SearchReplace] = []
        notes: list[str] = []
        weights = {"crossover": 1.0} if prompt.mode == "crossover" and prompt.second_parent else self.weights
        for _ in range(self._rng.randint(1, self.max_edits)):
            for _attempt in range(8):
                before = code
                kind = self._rng.choices(list(weights), weights=list(weights.values()))[0]
                made = getattr(self, f"_{kind}")(code, prompt)
                if made is None:
                    continue
                edit, note = made
                try:
                    code = apply_edits(code, [edit])
                except EditError:
                    continue
                if code == prompt.parent.code:  # this edit undid an earlier one
                    code = before
                    continue
                edits.append(edit)
                notes.append(note)
                break
        if not edits or code == prompt.parent.code:
            raise ProposerError("offline mutator found nothing to mutate inside the EVOLVE-BLOCKs")
        return Proposal(text="Offline mutation: " + "; ".join(notes) + ".\n" + format_diff(edits),
                        model=self.name)

    # -- mutations: each returns (edit, description) or None ------------------------------------
    def _tokens_in_blocks(self, code: str, wanted) -> list[tuple[int, int, str]]:
        """(start, end, text) character spans of tokens inside blocks for which `wanted(tok)` holds."""
        starts = _line_starts(code)
        spans = evolve_blocks(code)
        found = []
        try:
            for tok in tokenize.generate_tokens(io.StringIO(code).readline):
                if not wanted(tok):
                    continue
                a = starts[tok.start[0] - 1] + tok.start[1]
                b = starts[tok.end[0] - 1] + tok.end[1]
                if any(s <= a and b <= e for s, e in spans):
                    found.append((a, b, tok.string))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            return []
        return found

    def _replace_token(self, code: str, a: int, b: int, new: str) -> SearchReplace:
        """An edit replacing code[a:b] by `new`, its SEARCH grown by whole lines until unique."""
        lo = code.rfind("\n", 0, a) + 1
        hi = code.find("\n", b)
        hi = len(code) if hi < 0 else hi + 1
        while code.count(code[lo:hi]) > 1 and (lo > 0 or hi < len(code)):
            lo = code.rfind("\n", 0, max(lo - 1, 0)) + 1 if lo > 0 else 0
            nxt = code.find("\n", hi)
            hi = len(code) if nxt < 0 else nxt + 1
        search = code[lo:hi]
        return SearchReplace(search, search[: a - lo] + new + search[b - lo:])

    def _constant(self, code: str, prompt: Prompt):
        numbers = self._tokens_in_blocks(code, lambda t: t.type == tokenize.NUMBER)
        if not numbers:
            return None
        a, b, text = self._rng.choice(numbers)
        try:
            value = int(text, 0) if text.isdigit() or text.lower().startswith(("0x", "0o", "0b")) else float(text)
        except ValueError:
            return None
        if isinstance(value, int) and value < 10:  # counts and indices: small steps
            new = str(max(0, value + self._rng.choice([-2, -1, 1, 2])))
        elif isinstance(value, int):
            new = str(max(1, round(value * math.exp(self._rng.gauss(0.0, 0.3)))))
        else:
            # a zero has no scale to keep: give it one of order one (a weight switched on, say)
            new_value = value * math.exp(self._rng.gauss(0.0, 0.3)) if value else self._rng.gauss(0.0, 0.5)
            new = f"{new_value:.4g}"
            if not any(c in new for c in ".e"):
                new += ".0"
        if new == text:
            return None
        return self._replace_token(code, a, b, new), f"constant {text} -> {new}"

    def _operator(self, code: str, prompt: Prompt):
        ops = self._tokens_in_blocks(code, lambda t: t.string in _SWAPS and t.type in (tokenize.OP, tokenize.NAME))
        if not ops:
            return None
        a, b, text = self._rng.choice(ops)
        return self._replace_token(code, a, b, _SWAPS[text]), f"operator {text} -> {_SWAPS[text]}"

    def _crossover(self, code: str, prompt: Prompt):
        pool = [prompt.second_parent] if prompt.mode == "crossover" and prompt.second_parent else prompt.inspirations
        donors = [p for p in pool if p.code != code]
        if not donors:
            return None
        donor = self._rng.choice(donors).code
        mine, theirs = evolve_blocks(code), evolve_blocks(donor)
        if len(mine) != len(theirs):
            return None
        k = self._rng.randrange(len(mine))
        (ms, me), (ds, de) = mine[k], theirs[k]
        a_lines = code[ms:me].splitlines(keepends=True)
        b_lines = donor[ds:de].splitlines(keepends=True)
        ops = [op for op in difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False).get_opcodes()
               if op[0] != "equal"]
        if not ops:
            return None
        _, i1, i2, j1, j2 = self._rng.choice(ops)
        offset = ms + sum(len(line) for line in a_lines[:i1])
        if i1 == i2:  # an insertion: anchor it on the line before
            if i1 == 0:
                return None
            offset -= len(a_lines[i1 - 1])
            i1 -= 1
            new = a_lines[i1] + "".join(b_lines[j1:j2])
        else:
            new = "".join(b_lines[j1:j2])
        old_len = sum(len(line) for line in a_lines[i1:i2])
        edit = self._replace_token(code, offset, offset + old_len, new)
        return edit, f"crossover of {i2 - i1 or 1} line(s) from an inspiration"
