"""A campaign's figures computed in SQL, for readers that need no in-memory indexes (`evolve status`).

Each function takes a `ProgramDatabase` (open it with `indexes=False`: these read the rows, grouped and
ordered by the database, and never touch the indexes) and returns plain data. Scores are the engine's
(maximised); callers show them naturally (`evaluators.direction.natural`).
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import case, func, inspect, select

from evolve._orm import MigrationRow, ProgramRow, RunLockRow, StopRow
from evolve.database import ProgramDatabase, Summary
from evolve.llm.outcomes import (
    ModelOutcomes,
    counted_outcomes,
    edit_failure_kind,
    trailing_unapplied,
)
from evolve.program import ProgramStatus

__all__ = ["Figures", "LockRow", "Stop", "Top", "Valid", "failure_reason", "figures", "island_best",
           "last_iteration", "last_stop", "lock_row", "top_programs", "unapplied_tail", "valid_programs"]

_FAILED = (ProgramStatus.INVALID, ProgramStatus.EVALUATOR_ERROR, ProgramStatus.EDIT_FAILED,
           ProgramStatus.PROPOSAL_FAILED)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(e[-+]?\d+)?")
_EXCEPTION = re.compile(r"^(\w+\.)*\w*(Error|Exception|Exit|Interrupt|Timeout|Warning)\b", re.MULTILINE)


@dataclass
class Figures:
    """What the rows of a campaign add up to (one grouped scan).

    Attributes:
        counts: rows per status.
        iterations: rows past the initial program's.
        children_evaluated, children_valid: evaluated rows past the initial program's, and the valid ones.
        failures: (status, reason) -> rows, for the failed statuses (`failure_reason`).
        outcomes: per proposer, what became of its proposals (`evolve.llm.outcomes.ModelOutcomes`).
    """

    counts: dict[str, int] = field(default_factory=dict)
    iterations: int = 0
    children_evaluated: int = 0
    children_valid: int = 0
    failures: collections.Counter = field(default_factory=collections.Counter)
    outcomes: dict[str, ModelOutcomes] = field(default_factory=dict)


class Top(NamedTuple):
    """A program's small columns, for the best and the initial program."""

    id: int
    iteration: int
    score: float
    proposer: str
    created_at: datetime | None


@dataclass(frozen=True)
class Stop:
    """How an invocation of the campaign ended, as it recorded it (`ProgramDatabase.record_stop`)."""

    state: str
    reason: str
    at: float
    iterations: int
    host: str
    pid: int


@dataclass(frozen=True)
class LockRow:
    """The campaign's `run_locks` row: the controller that runs it (or ran it, when stale)."""

    host: str
    pid: int
    since: str
    heartbeat: float
    run_dir: str


def failure_reason(status: ProgramStatus, error: str) -> str:
    """The gist of why a program failed, so that failures of one kind count together: an edit failure's
    kind, a traceback's stage and exception type, else the first line with its numbers as N."""
    if status is ProgramStatus.EDIT_FAILED:
        return edit_failure_kind(error)
    if status is ProgramStatus.PROPOSAL_FAILED and "context_tokens" in error and "prompt needs about" in error:
        return "prompt too large"
    text = error.strip()
    if "Traceback (most recent call last)" in text:
        where = text.split("Traceback (most recent call last)", 1)[0].strip()
        kinds = [m.group(0) for m in _EXCEPTION.finditer(text)]  # the last is the one raised
        return f"{where} {kinds[-1] if kinds else 'a traceback'}".strip()
    first = text.splitlines()[0] if text else "(no reason given)"
    first = _NUMBER.sub("N", first)
    return first if len(first) <= 100 else first[:99] + "…"


def figures(db: ProgramDatabase) -> Figures:
    """Counts, children's valid share, failure reasons and per-proposer outcomes, in one grouped query."""
    P = ProgramRow
    failed = [s.value for s in _FAILED]
    child = (P.iteration > 0).label("child")
    proposal = (P.parent_id.is_not(None)).label("proposal")
    error = case((P.status.in_(failed), P.error), else_="").label("error")
    query = (select(P.proposer, P.status, child, proposal, error, func.count())
             .where(P.campaign_id == db.campaign_id).group_by(P.proposer, P.status, child, proposal, error))
    out = Figures()
    proposals = []
    counts: collections.Counter = collections.Counter()
    with db.connect() as conn:
        rows = conn.execute(query).all()
    for proposer, status_value, is_child, is_proposal, error_text, n in rows:
        status = ProgramStatus(status_value)
        counts[status.value] += n
        if is_child:
            out.iterations += n
            if status.is_evaluated():
                out.children_evaluated += n
                out.children_valid += n * (status is ProgramStatus.VALID)
            if is_proposal:
                proposals.append((proposer, status, error_text or "", n))
        if status in _FAILED:
            out.failures[(status.value, failure_reason(status, error_text or ""))] += n
    out.counts = dict(counts)
    out.outcomes = counted_outcomes(proposals)
    return out


class Valid(NamedTuple):
    """A valid program's columns that the best, the islands and the improvements need."""

    id: int
    iteration: int
    score: float
    island: int
    parent_id: int | None
    proposer: str


def valid_programs(db: ProgramDatabase) -> list[Valid]:
    """Every valid program of the campaign in commit order (one scan of an index, no row read)."""
    P = ProgramRow
    query = (select(P.id, P.iteration, P.score, P.island, P.parent_id, P.proposer)
             .where(P.campaign_id == db.campaign_id, P.status == ProgramStatus.VALID.value).order_by(P.id))
    with db.connect() as conn:
        return [Valid(*row) for row in conn.execute(query).cursor.fetchall()]


def top_programs(db: ProgramDatabase, valid: list[Valid]) -> tuple[Top | None, Top | None]:
    """The best valid program (the first of the highest score, as the indexes choose) and the initial one."""
    best = initial = None
    for v in valid:
        if best is None or v.score > best.score:
            best = v
        if initial is None and v.iteration == 0:
            initial = v
    found = {v.id: v for v in (best, initial) if v is not None}
    if not found:
        return None, None
    with db.connect() as conn:
        when = dict(conn.execute(select(ProgramRow.id, ProgramRow.created_at).where(ProgramRow.id.in_(found))).all())
    tops = {pid: Top(*_utc((v.id, v.iteration, v.score, v.proposer, when.get(pid)))) for pid, v in found.items()}
    return tops.get(best.id) if best else None, tops.get(initial.id) if initial else None


def island_best(db: ProgramDatabase, islands: int, valid: list[Valid]) -> list[float | None]:
    """The best score on each island: its own programs, those migrated to it, and the initial program
    (which seeds every island), as the indexes place them."""
    P, M = ProgramRow, MigrationRow
    moved = (select(M.to_island, func.max(P.score)).join(P, P.id == M.program_id)
             .where(M.campaign_id == db.campaign_id, P.status == ProgramStatus.VALID.value).group_by(M.to_island))
    with db.connect() as conn:
        found = list(conn.execute(moved).all())
    seed = next((v.score for v in valid if v.iteration == 0), None)
    found += [(n, seed) for n in range(islands) if seed is not None]
    found += [(v.island % islands, v.score) for v in valid]
    best: list[float | None] = [None] * islands
    for island, score in found:
        if 0 <= island < islands and score is not None and (best[island] is None or score > best[island]):
            best[island] = score
    return best


def last_iteration(db: ProgramDatabase) -> int:
    """The highest iteration number committed (-1 when there is none)."""
    with db.connect() as conn:
        found = conn.scalar(select(func.max(ProgramRow.iteration)).where(ProgramRow.campaign_id == db.campaign_id))
    return -1 if found is None else found


def unapplied_tail(db: ProgramDatabase) -> tuple[int, collections.Counter, str]:
    """`evolve.llm.outcomes.trailing_unapplied` of the campaign, reading only the rows after the last
    proposal that applied."""
    P = ProgramRow
    mine = (P.campaign_id == db.campaign_id, P.iteration > 0)
    unapplied = (ProgramStatus.EDIT_FAILED.value, ProgramStatus.PROPOSAL_FAILED.value)
    with db.connect() as conn:
        last_applied = conn.scalar(select(func.max(P.id)).where(*mine, P.status.not_in(unapplied))) or 0
        query = (select(*(getattr(P, name) for name in Summary._fields)).where(*mine, P.id > last_applied)
                 .order_by(P.id))
        tail = [Summary(pid, iteration, ProgramStatus(status), *rest)
                for pid, iteration, status, *rest in conn.execute(query)]
    return trailing_unapplied(tail)


def last_stop(db: ProgramDatabase) -> Stop | None:
    """The latest recorded end of an invocation, or None (none yet, or a database from before evolve
    recorded them)."""
    with db.connect() as conn:
        if not inspect(conn).has_table(StopRow.__tablename__):
            return None
        row = conn.execute(select(StopRow.state, StopRow.reason, StopRow.at, StopRow.iterations, StopRow.host,
                                  StopRow.pid).where(StopRow.campaign_id == db.campaign_id)
                           .order_by(StopRow.id.desc()).limit(1)).first()
    return Stop(*row) if row else None


def lock_row(db: ProgramDatabase, campaign: str) -> LockRow | None:
    """The campaign's run lock row (live or stale), or None."""
    with db.connect() as conn:
        if not inspect(conn).has_table(RunLockRow.__tablename__):
            return None
        row = conn.execute(select(RunLockRow.host, RunLockRow.pid, RunLockRow.since, RunLockRow.heartbeat,
                                  RunLockRow.run_dir).where(RunLockRow.campaign == campaign)).first()
    return LockRow(*row) if row else None


def _utc(row: Any) -> tuple:
    """A row with its created_at as an aware UTC datetime (SQLite returns it naive; it was written in UTC)."""
    *rest, created = tuple(row)
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (*rest, created)
