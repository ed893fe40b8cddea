"""The genealogy of a campaign's programs, laid out as a tree: every program while there are at most
`limit`, else the ancestries of the best programs until `limit` nodes (a note says which), never every
node of a run of 100,000.

Read from the programs' small columns (id, parent, status, score, island, generation, iteration, proposer):
on SQLite the covering index holds them, so no row's code is read.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from evaluators.direction import natural
from evolve.program import ProgramStatus
from evolve.storage._orm import ProgramRow
from evolve.storage.database import ProgramDatabase, _raw_rows

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "genealogy"]

DEFAULT_LIMIT = 2000
MAX_LIMIT = 10000


def genealogy(db: ProgramDatabase, direction: str, limit: int = DEFAULT_LIMIT,
              programs: Sequence[Any] | None = None) -> dict[str, Any]:
    """The nodes drawn (x: generation, y: the tree's row), the edges among them, and a note when they are
    a sample. `programs`: every program's small columns in commit order, when the caller has read them
    (`evolve.ui.data`'s rows), else they are read here."""
    if programs is not None:
        rows = {r.id: (r.id, r.parent_id, r.status.value, r.score, r.island, r.generation, r.iteration, r.proposer)
                for r in programs}
    else:
        P = ProgramRow
        query = (select(P.id, P.parent_id, P.status, P.score, P.island, P.generation, P.iteration, P.proposer)
                 .where(P.campaign_id == db.campaign_id).order_by(P.id))
        with db.connect() as conn:
            rows = {r[0]: r for r in _raw_rows(conn, query)}  # without SQLAlchemy's per-row work: 100,000 rows
    total, note = len(rows), ""
    if total > limit:
        keep, leaves = _best_ancestries(rows, limit)
        note = (f"{len(keep)} of {total} programs: the ancestries of the {leaves} best valid programs "
                f"(limit={limit}); the table of programs lists every one")
        rows = {pid: rows[pid] for pid in sorted(keep)}
    y = _layout(rows)
    valid = ProgramStatus.VALID.value
    best = max((r for r in rows.values() if r[2] == valid), key=lambda r: (r[3], -r[0]), default=None)
    nodes = [{"id": pid, "parent": parent if parent in rows else None, "status": status,
              "score": natural(score, direction), "island": island, "generation": generation, "iteration": iteration,
              "proposer": proposer or "", "y": y[pid], "best": best is not None and pid == best[0]}
             for pid, (_, parent, status, score, island, generation, iteration, proposer) in rows.items()]
    return {"nodes": nodes, "total": total, "shown": len(nodes), "note": note, "limit": limit}


def _best_ancestries(rows: dict[int, tuple], limit: int) -> tuple[set[int], int]:
    """The ancestries of the best valid programs, best first, as long as they fit in `limit` nodes."""
    status = ProgramStatus.VALID.value
    valid = sorted((r for r in rows.values() if r[2] == status), key=lambda r: (-r[3], r[0]))
    keep: set[int] = set()
    leaves = 0
    for row in valid:
        line, pid = [], row[0]
        while pid is not None and pid in rows and pid not in keep:
            line.append(pid)
            pid = rows[pid][1]
        if len(keep) + len(line) > limit:
            if leaves:
                break
            line = line[:limit]  # the best program's own ancestry is longer than the limit: its newest part
        keep.update(line)
        leaves += 1
    return keep, leaves


def _layout(rows: dict[int, tuple]) -> dict[int, float]:
    """Each node's row: a leaf takes the next one, depth first; a parent the middle of its children's."""
    children: dict[int | None, list[int]] = collections.defaultdict(list)
    for pid, row in rows.items():
        parent = row[1]
        children[parent if parent in rows else None].append(pid)
    y: dict[int, float] = {}
    leaf = 0
    stack = [(root, False) for root in reversed(children.get(None, []))]
    while stack:
        pid, placed = stack.pop()
        kids = children.get(pid, [])
        if not placed:
            stack.append((pid, True))
            stack.extend((k, False) for k in reversed(kids))
        elif kids:
            y[pid] = (min(y[k] for k in kids) + max(y[k] for k in kids)) / 2
        else:
            y[pid], leaf = leaf, leaf + 1
    return y
