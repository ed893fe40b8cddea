"""The offline proposer: structure-aware changes inside EVOLVE-BLOCKs, sent as SEARCH/REPLACE text.

No network, no key. The engine reads the parent's syntax tree (`source`) and makes one to `max_edits`
moves per proposal:

- constant: a number stepped with a step size of its own that adapts to success (`constants`)
- crossover: statements, whole functions or one number taken from an inspiration or the second parent
  (`crossover`; never between programs whose blocks are equal)
- term, operator, swap, reorder, literal, sequence: structural moves (`moves`)

Subscripts, slices and loop bounds are left alone. Which kinds are drawn adapts to how often each improved
its parent (`observe`), and a change that gives a program the engine has already proposed or been shown
is drawn again. The proposal's `reason` names its move kinds (`constant+term`), so a run's programs can
be counted per kind. A block the engine cannot change is a `ProposerError` of one line saying why.
"""

from __future__ import annotations

import random
from collections import OrderedDict

from evolve.errors import EditError, ProposerError
from evolve.proposals.edits import SearchReplace, apply_proposal, format_diff
from evolve.proposals.llm.base import Prompt, Proposal, Proposer
from evolve.proposals.llm.offline.constants import StepSizes, constant_change
from evolve.proposals.llm.offline.crossover import crossover, same_blocks
from evolve.proposals.llm.offline.moves import MOVES
from evolve.proposals.llm.offline.source import Change, Source, Unreadable
from evolve.proposals.novelty import canonical_hash

__all__ = ["DEFAULT_WEIGHTS", "OfflineMutator"]

DEFAULT_WEIGHTS = {"constant": 0.45, "crossover": 0.2, "term": 0.07, "operator": 0.06, "swap": 0.05,
                   "reorder": 0.03, "literal": 0.07, "sequence": 0.07}
_TRIES = 24  # proposals composed before giving up on one that is new
_PRIOR = (1.0, 10.0)  # a kind starts as if it had improved its parent once in ten tries
_PENDING = 4096  # proposals remembered until observed


class OfflineMutator(Proposer):
    """Mutates the parent's EVOLVE-BLOCKs. Deterministic for a given seed and sequence of prompts and observations.

    Args:
        seed: seeds the choice of moves.
        max_edits: each proposal makes between 1 and this many moves.
        weights: relative weights of the move kinds (`DEFAULT_WEIGHTS`); a kind left out is never drawn.
    """

    name = "offline-mutator"

    def __init__(self, seed: int = 0, max_edits: int = 2, weights: dict[str, float] | None = None) -> None:
        self._rng = random.Random(seed)
        self.max_edits = max(1, max_edits)
        self.weights = dict(weights if weights is not None else DEFAULT_WEIGHTS)
        unknown = set(self.weights) - {"constant", "crossover", *MOVES}
        if unknown:
            raise ValueError(f"offline mutator: unknown move kind(s) {sorted(unknown)}; use "
                             f"{', '.join(DEFAULT_WEIGHTS)}")
        self.steps = StepSizes()
        self.tally: dict[str, list[int]] = {kind: [0, 0] for kind in self.weights}  # tries, improvements
        self._pending: OrderedDict[str, list[tuple[str, Change]]] = OrderedDict()
        self._seen: set[str] = set()
        self._sources: OrderedDict[str, Source | Unreadable] = OrderedDict()  # parsed programs, by code
        self._hashes: OrderedDict[str, str] = OrderedDict()  # canonical hashes, by code

    async def propose(self, prompt: Prompt) -> Proposal:
        """Return one to `max_edits` moves on the parent as SEARCH/REPLACE text."""
        code = prompt.parent.code
        src = self._source(code)
        if isinstance(src, Unreadable):
            raise ProposerError(f"offline mutator cannot read the parent's structure: {src}")
        others = [prompt.second_parent] if prompt.mode == "crossover" and prompt.second_parent else []
        others += prompt.inspirations
        self._seen.add(self._hash(code))
        self._seen.update(self._hash(p.code) for p in others)
        donors = self._donors(src, others)
        paired = prompt.mode == "crossover" and bool(donors) and prompt.second_parent is not None \
            and donors[0][0] is prompt.second_parent
        produced = False
        for attempt in range(_TRIES):
            made = self._compose(src, [d for _, d in donors[:1]] if paired else [d for _, d in donors],
                                 first="crossover" if paired and attempt < _TRIES // 2 else None)
            if made is None:
                continue
            produced = True
            child, steps, edits = made
            key = self._hash(child)
            if key in self._seen:
                continue
            text = ("Offline mutation: " + "; ".join(change.note for _, change in steps) + ".\n" + format_diff(edits))
            try:
                if apply_proposal(code, text) != child:
                    continue
            except EditError:
                continue
            self._seen.add(key)
            self._pending[text] = steps
            while len(self._pending) > _PENDING:
                self._pending.popitem(last=False)
            return Proposal(text=text, model=self.name, reason="+".join(change.kind for _, change in steps))
        if produced:
            raise ProposerError(f"offline mutator found nothing new to mutate inside the EVOLVE-BLOCKs: each of "
                                f"{_TRIES} changes it tried gives a program already proposed or shown")
        kinds = ", ".join(self.weights)
        raise ProposerError(f"offline mutator found nothing to mutate inside the EVOLVE-BLOCKs: no move of the "
                            f"kinds drawn ({kinds}) applies: no tunable number, operator, comparison, string, list "
                            f"or pair of independent statements outside indexing, and no other program differs")

    def observe(self, proposal: Proposal, improved: bool) -> None:
        """Learn from a child's fate: its move kinds' success rates and its constants' step sizes."""
        steps = self._pending.pop(proposal.text, None)
        for arm, change in steps or ():
            tally = self.tally.setdefault(arm, [0, 0])
            tally[0] += 1
            tally[1] += bool(improved)
            if change.key:
                self.steps.update(change.key, change.sigma, improved)

    def _donors(self, src: Source, others: list) -> list[tuple[object, Source]]:
        """The other programs whose blocks differ from the parent's, parsed."""
        donors = []
        for program in others:
            other = self._source(program.code)
            if isinstance(other, Source) and not same_blocks(src, other):
                donors.append((program, other))
        return donors

    def _source(self, code: str) -> Source | Unreadable:
        """The parsed program (or why it cannot be), kept for the programs seen most recently."""
        src = self._sources.pop(code, None)
        if src is None:
            try:
                src = Source(code)
            except Unreadable as exc:
                src = exc
        self._sources[code] = src
        if len(self._sources) > 256:
            self._sources.popitem(last=False)
        return src

    def _hash(self, code: str) -> str:
        """The code's canonical hash (`evolve.proposals.novelty`), kept for the programs seen most recently."""
        key = self._hashes.pop(code, None) or canonical_hash(code)
        self._hashes[code] = key
        if len(self._hashes) > 1024:
            self._hashes.popitem(last=False)
        return key

    def _weight(self, kind: str) -> float:
        tries, wins = self.tally.get(kind, (0, 0))
        rate = (wins + _PRIOR[0]) / (tries + _PRIOR[1])
        return self.weights[kind] * min(4.0, max(0.1, rate * _PRIOR[1] / _PRIOR[0]))

    def _move(self, kind: str, src: Source, donors: list[Source]) -> Change | None:
        if kind == "constant":
            return constant_change(src, self.steps, self._rng)
        if kind == "crossover":
            return crossover(src, self._rng.choice(donors), self._rng) if donors else None
        return MOVES[kind](src, self._rng)

    def _compose(self, src: Source, donors: list[Source], first: str | None
                 ) -> tuple[str, list[tuple[str, Change]], list[SearchReplace]] | None:
        """Make 1..max_edits moves, each on the code the previous ones left: (child, moves, edits)."""
        steps: list[tuple[str, Change]] = []
        edits: list[SearchReplace] = []
        current = src
        for n in range(self._rng.randint(1, self.max_edits)):
            kinds = {k: self._weight(k) for k, w in self.weights.items() if w > 0}
            if not donors:
                kinds.pop("crossover", None)
            while kinds:
                kind = first if n == 0 and first in kinds else \
                    self._rng.choices(list(kinds), weights=list(kinds.values()))[0]
                change = self._move(kind, current, donors)
                kinds.pop(kind)
                if change is None:
                    continue
                edit = current.edit(change.start, change.end, change.text)
                if edit is None:
                    continue
                try:
                    child = Source(current.code[:change.start] + change.text + current.code[change.end:])
                except Unreadable:
                    continue
                if child.code == current.code:
                    continue
                steps.append((kind, change))
                edits.append(edit)
                current = child
                break
        if not steps or current.code == src.code:
            return None
        return current.code, steps, edits
