"""The offline proposer: structure-aware changes inside EVOLVE-BLOCKs, sent as SEARCH/REPLACE text.

No network, no key. The engine reads the parent's syntax tree (`source`) and makes one to `max_edits`
moves per proposal:

- constant: a number, drawn by its own success rate (and less when its steps leave the score unchanged),
  stepped with a step size of its own that adapts to success (and grows when a step changed nothing), half
  the time in the direction of its last success (`constants`)
- crossover: statements, whole functions or one number taken from an inspiration or the second parent
  (`crossover`; never between programs whose blocks are equal)
- elites: the numbers the parent shares with the other programs moved together, by differential
  evolution across them (`elites`)
- term, operator, swap, reorder, literal, sequence: structural moves (`moves`)

The moves of one proposal are drawn on the parent's syntax tree (parsed and analysed once per parent, kept
for the programs seen most recently) and touch disjoint parts of it; a child that takes statements from
another program is parsed once, to check it (and dropped when it reads a name it never binds).

On the best parent seen so far, some proposals are a single constant step (a local search around it); half
of those step the number whose step last improved its parent again, in the same direction, with a step up
to twice as long, until such a step fails (a pattern search's line search).
Subscripts, slices and loop bounds are left alone. Which kinds are drawn adapts to how often each improved
its parent (`observe`), and a change that gives a program the engine has already proposed or been shown
is drawn again. The proposal's `reason` names its move kinds (`constant+term`), so a run's programs can
be counted per kind. A block the engine cannot change is a `ProposerError` of one line saying why.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import OrderedDict

from evolve.errors import EditError, ProposerError
from evolve.proposals.edits import SearchReplace, apply_proposal, evolve_blocks, format_diff
from evolve.proposals.llm.base import Prompt, Proposal, Proposer
from evolve.proposals.llm.offline.constants import StepSizes, constant_change
from evolve.proposals.llm.offline.crossover import crossover, same_blocks, unbound_read
from evolve.proposals.llm.offline.elites import elites
from evolve.proposals.llm.offline.moves import MOVES
from evolve.proposals.llm.offline.source import Change, Source, Unreadable, text_edit

__all__ = ["DEFAULT_WEIGHTS", "OfflineMutator"]

DEFAULT_WEIGHTS = {"constant": 0.45, "crossover": 0.2, "elites": 0.05, "term": 0.07, "operator": 0.06, "swap": 0.05,
                   "reorder": 0.03, "literal": 0.07, "sequence": 0.07}
# Kinds whose weight never grows with success: moving towards better programs improves a parent often without
# finding anything new (measured: a higher elites weight slowed warehouse_tsp), so success is no sign of value.
_FOLLOWERS = {"elites"}
_TRIES = 24  # proposals composed before giving up on one that is new
_PRIOR = (1.0, 10.0)  # a kind starts as if it had improved its parent once in ten tries
_PENDING = 4096  # proposals remembered until observed
_CACHED = 256  # parsed programs kept (parents, inspirations, and children checked after a statement crossover)
_COMMENT = re.compile(r"""("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|[ \t]*#[^\n]*""")
_LOCAL = 0.3  # on the best parent seen, the share of proposals that are one constant step (a local search)
_FOLLOW = 0.5  # of the local steps, the share that follow the last step that improved (a line search)
_UNSAFE = {"statement", "function"}  # the changes after which the child is parsed again (others keep it valid)
Moves = list[tuple[str, list[Change]]]  # each move's kind and the changes it made


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
        unknown = set(self.weights) - {"constant", "crossover", "elites", *MOVES}
        if unknown:
            raise ValueError(f"offline mutator: unknown move kind(s) {sorted(unknown)}; use "
                             f"{', '.join(DEFAULT_WEIGHTS)}")
        self.steps = StepSizes()
        self.tally: dict[str, list[int]] = {kind: [0, 0] for kind in self.weights}  # tries, improvements
        self._pending: OrderedDict[str, Moves] = OrderedDict()
        self._seen: set[str] = set()
        self._sources: OrderedDict[str, Source | Unreadable] = OrderedDict()  # parsed programs, by code
        self._keys: OrderedDict[str, str] = OrderedDict()  # `_key`s, by code
        self._best: float | None = None  # the best parent score seen
        self._observed: tuple[str, Moves] = ("", [])  # the proposal `observe` saw last, and its moves

    async def propose(self, prompt: Prompt) -> Proposal:
        """Return one to `max_edits` moves on the parent as SEARCH/REPLACE text."""
        code = prompt.parent.code
        src = self._source(code)
        if isinstance(src, Unreadable):
            raise ProposerError(f"offline mutator cannot read the parent's structure: {src}")
        others = [prompt.second_parent] if prompt.mode == "crossover" and prompt.second_parent else []
        others += prompt.inspirations
        self._seen.add(self._key(code))
        self._seen.update(self._key(p.code) for p in others)
        donors = self._donors(src, others)
        paired = prompt.mode == "crossover" and bool(donors) and prompt.second_parent is not None \
            and donors[0][0] is prompt.second_parent
        score = prompt.parent.score
        best = score is not None and (self._best is None or score >= self._best)
        if best:
            self._best = score
        local = best and not paired and self._rng.random() < _LOCAL
        produced = broken = False
        for attempt in range(_TRIES):
            made = self._compose(src, donors[:1] if paired else donors, prompt.parent.score,
                                 first="crossover" if paired and attempt < _TRIES // 2 else None,
                                 local=local and attempt < _TRIES // 2)
            if made is False:
                broken = True
            if not made:
                continue
            produced = True
            child, moves, edits = made
            key = self._key(child)
            if key in self._seen:
                continue
            text = ("Offline mutation: " + "; ".join(_note(kind, changes) for kind, changes in moves) + ".\n"
                    + format_diff(edits))
            try:
                if apply_proposal(code, text) != child:
                    continue
            except EditError:
                continue
            self._seen.add(key)
            self._pending[text] = moves
            while len(self._pending) > _PENDING:
                self._pending.popitem(last=False)
            return Proposal(text=text, model=self.name, reason="+".join(changes[0].kind for _, changes in moves))
        if produced:
            raise ProposerError(f"offline mutator found nothing new to mutate inside the EVOLVE-BLOCKs: each of "
                                f"{_TRIES} changes it tried gives a program already proposed or shown")
        if broken:
            raise ProposerError(f"offline mutator found nothing to mutate inside the EVOLVE-BLOCKs: each of the "
                                f"{_TRIES} changes it tried takes statements that read a name the child never "
                                f"binds, or binds too late, or gives no new program")
        kinds = ", ".join(self.weights)
        raise ProposerError(f"offline mutator found nothing to mutate inside the EVOLVE-BLOCKs: no move of the "
                            f"kinds drawn ({kinds}) applies: no tunable number, operator, comparison, string, list "
                            f"or pair of independent statements outside indexing, and no other program differs")

    def observe(self, proposal: Proposal, improved: bool) -> None:
        """Learn from a child's fate: its move kinds' success rates and its constants' step sizes."""
        moves = self._pending.pop(proposal.text, None)
        self._observed = (proposal.text, moves or [])
        for arm, changes in moves or ():
            tally = self.tally.setdefault(arm, [0, 0])
            tally[0] += 1
            tally[1] += bool(improved)
            for change in changes:
                if change.key:
                    self.steps.update(change.key, change.sigma, improved, change.direction)

    def observe_unchanged(self, proposal: Proposal) -> None:
        """Learn that the child of `proposal` scored exactly as its parent: its constants' steps changed nothing."""
        text, moves = self._observed
        if text != proposal.text:
            return
        for _, changes in moves:
            for change in changes:
                if change.key:
                    self.steps.unchanged(change.key, change.sigma)

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
        self._keep(code, src)
        return src

    def _key(self, code: str) -> str:
        """`_key(code)`, kept for the programs seen most recently."""
        key = self._keys.pop(code, None) or _key(code)
        self._keys[code] = key
        if len(self._keys) > 4 * _CACHED:
            self._keys.popitem(last=False)
        return key

    def _keep(self, code: str, src: Source | Unreadable) -> None:
        self._sources[code] = src
        if len(self._sources) > _CACHED:
            self._sources.popitem(last=False)

    def _weight(self, kind: str) -> float:
        tries, wins = self.tally.get(kind, (0, 0))
        rate = (wins + _PRIOR[0]) / (tries + _PRIOR[1])
        return self.weights[kind] * min(1.0 if kind in _FOLLOWERS else 4.0, max(0.1, rate * _PRIOR[1] / _PRIOR[0]))

    def _move(self, kind: str, src: Source, donors: list[tuple[object, Source]], score: float,
              local: bool = False) -> list[Change]:
        if kind == "constant":
            change = constant_change(src, self.steps, self._rng, follow=local and self._rng.random() < _FOLLOW)
        elif kind == "crossover":
            change = crossover(src, self._rng.choice(donors)[1], self._rng) if donors else None
        elif kind == "elites":
            return elites(src, [(p.score, d) for p, d in donors], score, self._rng) or []
        else:
            change = MOVES[kind](src, self._rng)
        return [change] if change is not None else []

    def _compose(self, src: Source, donors: list[tuple[object, Source]], score: float, first: str | None,
                 local: bool = False) -> tuple[str, Moves, list[SearchReplace]] | bool | None:
        """Make 1..max_edits moves on disjoint parts of the parent: (child, moves, edits); False for a child
        that reads a name before binding it, None when no move applies. `local`: one constant step only."""
        moves: Moves = []
        taken: list[tuple[int, int]] = []
        for n in range(1 if local else self._rng.randint(1, self.max_edits)):
            kinds = {k: self._weight(k) for k, w in self.weights.items() if w > 0 and (not local or k == "constant")}
            if not donors:
                kinds.pop("crossover", None)
                kinds.pop("elites", None)
            while kinds:
                kind = first if n == 0 and first in kinds else \
                    self._rng.choices(list(kinds), weights=list(kinds.values()))[0]
                changes = [c for c in self._move(kind, src, donors, score, local) if src.code[c.start:c.end] != c.text]
                kinds.pop(kind)
                if changes and not any(a <= c.end and c.start <= b for c in changes for a, b in taken):
                    moves.append((kind, changes))
                    taken += [(c.start, c.end) for c in changes]
                    break
        if not moves:
            return None
        code, edits = src.code, []
        for change in sorted((c for _, changes in moves for c in changes), key=lambda c: -c.start):
            edit = text_edit(code, evolve_blocks(code), change.start, change.end, change.text)
            if edit is None:
                return None
            code = code[:change.start] + change.text + code[change.end:]
            edits.append(edit)
        if code == src.code or code in self._sources:
            return None
        if any(c.kind in _UNSAFE for _, changes in moves for c in changes):
            try:  # whole statements moved between programs: check that the child still parses and binds its names
                child = Source(code)
            except Unreadable:
                return None
            self._keep(code, child)
            if unbound_read(child.tree) is not None:
                return False
        return code, moves, edits


def _key(code: str) -> str:
    """The code's hash, comments, blank lines and trailing spaces aside (cheap: no tokenising)."""
    text = _COMMENT.sub(lambda m: m.group(1) or "", code)
    lines = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    return hashlib.blake2b(lines.encode(), digest_size=16).hexdigest()


def _note(kind: str, changes: list[Change]) -> str:
    if len(changes) == 1:
        return changes[0].note
    return f"{kind}: " + ", ".join(change.note for change in changes)
