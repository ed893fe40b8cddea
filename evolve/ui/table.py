"""The table of all programs: one page at a time, sorted and filtered in SQL over the programs' small
columns (on SQLite the covering index holds them all: no row's code, metrics or feedback is read).

A run may hold 100,000 programs: a page is at most `MAX_SIZE` rows, and the failure reasons (the labels of
the failure chart) are worked out once per program and kept (`Reasons`), so a filter by reason costs a scan
of that status's small columns.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from evaluators.direction import natural
from evolve.errors import EvolveError
from evolve.program import ProgramStatus
from evolve.storage._orm import ProgramRow
from evolve.storage.database import ProgramDatabase, _raw_rows
from evolve.ui import data as _data

__all__ = ["FAILED", "MAX_SIZE", "SORTS", "Reasons", "TableQuery", "program_page", "report_table"]

MAX_SIZE = 200
SORTS = ("score", "time", "island", "iteration", "generation")
FAILED = (ProgramStatus.INVALID, ProgramStatus.EDIT_FAILED, ProgramStatus.PROPOSAL_FAILED,
          ProgramStatus.EVALUATOR_ERROR)
_COLUMNS = ("id", "iteration", "status", "score", "island", "generation", "parent_id", "proposer", "mode",
            "created_at")


class TableQuery:
    """One page's request, checked: `sort` (one of `SORTS`), `order` (asc, desc), `status` and `reason`
    filters ("" for all), `island` (None for all), `page` (from 0) and `size` (1 to `MAX_SIZE`)."""

    def __init__(self, sort: str = "score", order: str = "desc", status: str = "", reason: str = "",
                 island: str | int | None = None, page: str | int = 0, size: str | int = 50) -> None:
        if sort not in SORTS:
            raise EvolveError(f"sort={sort}: sort by one of {', '.join(SORTS)}")
        if order not in ("asc", "desc"):
            raise EvolveError(f"order={order}: use asc or desc")
        statuses = [s.value for s in ProgramStatus]
        if status and status not in statuses:
            raise EvolveError(f"status={status}: filter by one of {', '.join(statuses)}")
        self.sort, self.order, self.status, self.reason = sort, order, status, reason
        self.island = None if island in (None, "") else _integer("island", island, 0)
        self.page = _integer("page", page, 0)
        self.size = min(MAX_SIZE, _integer("size", size, 1))


def _integer(name: str, value: str | int, least: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = least - 1
    if number < least:
        raise EvolveError(f"{name}={value}: a whole number of at least {least}")
    return number


class Reasons:
    """Every failed program's failure label (as the failure chart counts them), worked out once per
    program: each `update` reads only the rows committed since the last. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._upto = 0
        self.label: dict[int, str] = {}

    def update(self, db: ProgramDatabase) -> dict[int, str]:
        """Read the failures committed since the last update; return every label by program id."""
        P = ProgramRow
        with self._lock:
            query = (select(P.id, P.status, P.error).where(P.campaign_id == db.campaign_id, P.id > self._upto,
                                                           P.status.in_([s.value for s in FAILED])).order_by(P.id))
            known: dict[tuple[str, str], str] = {}  # most failures repeat an error word for word
            with db.connect() as conn:
                for pid, status, error in _raw_rows(conn, query):
                    key = (status, error or "")
                    label = known.get(key)
                    if label is None:
                        label = known[key] = _data._reason(ProgramStatus(status), key[1])
                    self.label[pid] = label
                    self._upto = pid
            return self.label


class _NoReasons(Reasons):
    """No labels: `report_table` works out those of the rows it shows only."""

    def update(self, db: ProgramDatabase) -> dict[int, str]:
        return {}


_FAILED_VALUES = frozenset(s.value for s in FAILED)


def _order(query: TableQuery, direction: str) -> list[Any]:
    """The ORDER BY of a page: the sort column (a score's nulls last, in natural order), then the id (the first
    committed first among equals, on every database)."""
    P = ProgramRow
    ascending = query.order == "asc"
    if query.sort == "score":
        natural_ascending = ascending if direction != "minimize" else not ascending  # stored scores are maximised
        return [P.score.is_(None), P.score.asc() if natural_ascending else P.score.desc(), P.id.asc()]
    column = {"time": P.id, "island": P.island, "iteration": P.iteration, "generation": P.generation}[query.sort]
    keys = [column.asc() if ascending else column.desc()]
    if query.sort != "time":
        keys += [P.score.is_(None), P.score.desc() if direction != "minimize" else P.score.asc(), P.id.asc()]
    return keys


def program_page(db: ProgramDatabase, direction: str, query: TableQuery, reasons: Reasons) -> dict[str, Any]:
    """One page of the table: its rows, the count that matches, and the statuses and reasons to filter by."""
    P = ProgramRow
    labels = reasons.update(db)
    where = [P.campaign_id == db.campaign_id]
    status = query.status
    if query.reason:
        status = query.reason.split(":", 1)[0]  # a label starts with its status
        if status not in {s.value for s in FAILED}:
            status = "-"  # no program has it
    if status:
        where.append(P.status == status)
    if query.island is not None:
        where.append(P.island == query.island)
    select_rows = select(*(getattr(P, c) for c in _COLUMNS)).where(*where).order_by(*_order(query, direction))
    start = query.page * query.size
    with db.connect() as conn:
        statuses = dict(conn.execute(select(P.status, func.count()).where(P.campaign_id == db.campaign_id)
                                     .group_by(P.status)).all())
        first = conn.scalar(select(func.min(P.created_at)).where(P.campaign_id == db.campaign_id))
        if not query.reason:
            total = conn.scalar(select(func.count()).select_from(P).where(*where)) or 0
            rows = conn.execute(select_rows.limit(query.size).offset(start)).all()
        else:  # the label is worked out in Python: walk that status's rows in order, keep the matching ones
            matching = {pid for pid, label in labels.items() if label == query.reason}
            total, rows = 0, []
            for row in conn.execute(select_rows):
                if row[0] in matching:
                    if start <= total < start + query.size:
                        rows.append(row)
                    total += 1
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {"total": total, "page": query.page, "size": query.size, "pages": max(1, -(-total // query.size)),
            "sort": query.sort, "order": query.order, "statuses": dict(sorted(statuses.items())),
            "reasons": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
            "rows": [_row(r, direction, labels, first) for r in rows]}


def _row(row: Any, direction: str, labels: dict[int, str], first: datetime | None) -> dict[str, Any]:
    pid, iteration, status, score, island, generation, parent, proposer, mode, created = row
    return {"id": pid, "iteration": iteration, "status": status, "score": natural(score, direction),
            "island": island, "generation": generation, "parent": parent, "proposer": proposer or "",
            "mode": mode or "", "reason": labels.get(pid, ""), "seconds": _seconds(created, first)}


def _seconds(moment: datetime | None, first: datetime | None) -> float | None:
    """Seconds from the campaign's first program to `moment` (SQLite returns them naive, written in UTC)."""
    if moment is None or first is None:
        return None
    moment, first = (t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in (moment, first))
    return round((moment - first).total_seconds(), 3)


def report_table(db: ProgramDatabase, direction: str, most: int = 2000) -> dict[str, Any]:
    """The best `most` programs' rows (failures after the valid ones), for report.html to sort and filter itself."""
    query = TableQuery()
    query.size = most  # one query, past the cap on what one request may ask for
    page = program_page(db, direction, query, _NoReasons())
    rows = page["rows"]
    failed = [row["id"] for row in rows if row["status"] in _FAILED_VALUES]
    labels: dict[int, str] = {}
    P = ProgramRow
    with db.connect() as conn:  # the labels of the rows shown only, not of every failed program
        for at in range(0, len(failed), 500):
            query_errors = select(P.id, P.status, P.error).where(P.id.in_(failed[at:at + 500]))
            for pid, status, error in _raw_rows(conn, query_errors):
                labels[pid] = _data._reason(ProgramStatus(status), error or "")
    for row in rows:
        row["reason"] = labels.get(row["id"], "")
    note = "" if len(rows) >= page["total"] else \
        f"this report holds the best {len(rows)} of {page['total']} programs; `evolve ui` lists every one"
    return {"direction": direction, "rows": rows, "statuses": page["statuses"], "note": note}
