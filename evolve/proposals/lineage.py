"""The lineage's recent attempts: what was tried on a parent and its ancestors, and how it turned out.

A prompt shows them (OpenEvolve's "previous attempts") so that a model does not propose again what just
failed on this line. `Lineage` keeps, from the store's small columns, each program's parent and its latest
children's ids; the few attempts a prompt shows are read in one query.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from evolve.program import Program, ProgramStatus
from evolve.storage.database import ProgramDatabase

__all__ = ["Attempt", "Lineage"]


@dataclass(frozen=True)
class Attempt:
    """One earlier child of the parent or of one of its ancestors.

    Attributes:
        program: the child as committed (valid, invalid, an edit that failed, a duplicate...).
        parent_score: its own parent's score, which its outcome is measured against.
        generations: 0 for a child of the prompt's parent, 1 for a child of its parent, and so on.
    """

    program: Program
    parent_score: float | None
    generations: int


class Lineage:
    """Each program's parent and latest children, kept up to date from the store as programs commit.

    `children` is how many of each program's latest children are remembered; `depth` how many ancestors
    `attempts` looks through. Not thread-safe: the campaign's event loop is its one user.
    """

    def __init__(self, database: ProgramDatabase, children: int = 4, depth: int = 3) -> None:
        self._db = database
        self._depth = depth
        self._parent: dict[int, int] = {}
        self._score: dict[int, float] = {}
        self._children: dict[int, collections.deque[int]] = collections.defaultdict(
            lambda: collections.deque(maxlen=children))
        valid = ProgramStatus.VALID.value
        for pid, parent_id, status, score in database.columns("id", "parent_id", "status", "score"):
            self._note(pid, parent_id, status == valid, score)
        database.subscribe(self.observe)

    def _note(self, pid: int, parent_id: int | None, valid: bool, score: float | None) -> None:
        if valid and score is not None:
            self._score[pid] = score
        if parent_id is not None:
            self._parent[pid] = parent_id
            self._children[parent_id].append(pid)

    def observe(self, program: Program) -> None:
        """Take note of one committed program."""
        self._note(program.id, program.parent_id, program.status is ProgramStatus.VALID, program.score)

    def attempts(self, parent: Program, limit: int = 5) -> list[Attempt]:
        """The latest `limit` children of `parent` and of its ancestors (the line itself left out), oldest
        first."""
        if limit <= 0:
            return []
        line, found = [parent.id], []
        while len(line) <= self._depth and (up := self._parent.get(line[-1])) is not None:
            line.append(up)
        on_line = set(line)
        for generations, pid in enumerate(line):
            found += [(child, generations, pid) for child in self._children.get(pid, ()) if child not in on_line]
        found.sort(reverse=True)
        chosen = sorted(found[:limit])
        programs = {p.id: p for p in self._db.get_many([child for child, _, _ in chosen])}
        return [Attempt(programs[child], self._score.get(pid), generations)
                for child, generations, pid in chosen if child in programs]
