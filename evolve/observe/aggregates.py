"""A campaign's figures computed from its rows, for readers that need no in-memory indexes (`evolve status`).

Each function takes a `ProgramDatabase` (open it with `indexes=False`: these read the rows, grouped and
ordered by the database, and never touch the indexes) and returns plain data. Scores are the engine's
(maximised); callers show them naturally (`evaluators.direction.natural`).

What every row adds up to is a `Tally`, which adds up: the controller keeps one in the database every
`CHECKPOINT_EVERY` commits and when it stops (`checkpoint`), and a reader (`current`) adds to it only the
rows committed since, so `evolve status` costs the same at 1,000 programs and at 100,000.
"""

from __future__ import annotations

import collections
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, func, inspect, select

from evolve.observe.outcomes import (
    PROMPT_TOO_LARGE,
    ModelOutcomes,
    counted_outcomes,
    edit_failure_kind,
    trailing_unapplied,
)
from evolve.program import ProgramStatus
from evolve.storage._orm import MigrationRow, ProgramRow, RunLockRow, StopRow, TallyRow
from evolve.storage.database import ProgramDatabase, Summary

__all__ = ["CHECKPOINT_EVERY", "IDLE_AFTER", "MAX_REASONS", "OTHER_REASONS", "Figures", "LockRow", "Stop",
           "Tally", "Top", "Valid", "checkpoint", "current", "failure_example", "failure_reason", "figures",
           "island_best", "last_stop", "leaders", "lock_row", "tally", "top_programs", "unapplied_tail"]

CHECKPOINT_EVERY = 1000  # commits between two tallies kept by the controller: what a reader adds at most
# Distinct failure reasons a tally keeps per status; the rarer ones count together as OTHER_REASONS. A
# candidate writes its own error texts (its exception's name, its first line): without a bound, a campaign
# of hostile or merely varied candidates would grow the kept tally, rewritten every CHECKPOINT_EVERY
# commits, with every row.
MAX_REASONS = 200
OTHER_REASONS = "(rarer reasons)"
IDLE_AFTER = 300.0  # seconds between two commits beyond which the campaign counts as not active (a resume)
_FAILED = (ProgramStatus.INVALID, ProgramStatus.EVALUATOR_ERROR, ProgramStatus.EDIT_FAILED,
           ProgramStatus.PROPOSAL_FAILED)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(e[-+]?\d+)?")
_EXCEPTION = re.compile(r"^(\w+\.)*\w*(Error|Exception|Exit|Interrupt|Timeout|Warning)\b", re.MULTILINE)


class Valid(NamedTuple):
    """A valid program's columns that the best, the islands and the improvements need."""

    id: int
    iteration: int
    score: float
    island: int
    parent_id: int | None
    proposer: str


@dataclass
class Figures:
    """What the rows of a campaign add up to (`figures` of its `Tally`).

    Attributes:
        counts: rows per status.
        iterations: rows past the initial program's.
        children_evaluated, children_valid: evaluated rows past the initial program's, and the valid ones.
        failures: (status, reason) -> rows, for the failed statuses (`failure_reason`).
        examples: (status, reason) -> the first such row's reason as written, where the reason masks its
            numbers (`failure_example`).
        outcomes: per proposer, what became of its proposals (`evolve.observe.outcomes.ModelOutcomes`).
        last_iteration: the highest iteration number committed (-1 when there is none).
        active_seconds: from the first commit to the last, less the gaps over `IDLE_AFTER` (between resumes).
    """

    counts: dict[str, int] = field(default_factory=dict)
    iterations: int = 0
    children_evaluated: int = 0
    children_valid: int = 0
    failures: collections.Counter = field(default_factory=collections.Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    outcomes: dict[str, ModelOutcomes] = field(default_factory=dict)
    last_iteration: int = -1
    active_seconds: float = 0.0


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
    return _reason_and_example(status, error)[0]


def failure_example(status: ProgramStatus, error: str) -> str:
    """The first line of `error` as written, where `failure_reason` shows it with its numbers as N; else ""."""
    return _reason_and_example(status, error)[1]


def _reason_and_example(status: ProgramStatus, error: str) -> tuple[str, str]:
    if status is ProgramStatus.EDIT_FAILED:
        return edit_failure_kind(error), ""
    if status is ProgramStatus.PROPOSAL_FAILED and "context_tokens" in error and "prompt needs about" in error:
        return PROMPT_TOO_LARGE, ""
    text = error.strip()
    if "Traceback (most recent call last)" in text:
        where = text.split("Traceback (most recent call last)", 1)[0].strip()
        kinds = [m.group(0) for m in _EXCEPTION.finditer(text)]  # the last is the one raised
        return f"{where} {kinds[-1] if kinds else 'a traceback'}".strip(), ""
    first = text.splitlines()[0] if text else "(no reason given)"
    reason, example = (line if len(line) <= 100 else line[:99] + "…" for line in (_NUMBER.sub("N", first), first))
    return reason, example if example != reason else ""


@dataclass
class Tally:
    """What a campaign's rows add up to, up to program id `upto`, in a form that adds up (`tally`).

    Attributes:
        groups: (proposer, status, child, proposal, reason) -> rows; child: past the initial program's
            iteration; proposal: has a parent; reason: `failure_reason` of a failed row, else "".
        examples: (status, reason) -> [program id, its error as written] of the first failed row of a reason
            that masks numbers (`failure_example`), for the reasons `groups` keeps.
        best: the first valid program of the highest score; initial: the first valid one of iteration 0.
        islands: the best valid score per island number as committed (not yet modulo the islands).
        improvements: per proposer, [valid programs that beat their valid parent, new bests].
        top: the best valid score so far (for new bests).
        active_seconds, last_moment: the active time (gaps over `IDLE_AFTER` left out) and the last commit's
            time (seconds since the epoch), to go on from.
        last_iteration: the highest iteration number (-1 when there is none).
    """

    VERSION = 2  # of `to_json`'s form and of `failure_reason`: bump it when either changes (an older one is not used)

    upto: int = 0
    groups: collections.Counter = field(default_factory=collections.Counter)
    examples: dict[tuple[str, str], list] = field(default_factory=dict)
    best: Valid | None = None
    initial: Valid | None = None
    islands: dict[int, float] = field(default_factory=dict)
    improvements: dict[str, list[int]] = field(default_factory=dict)
    top: float | None = None
    active_seconds: float = 0.0
    last_moment: float | None = None
    last_iteration: int = -1

    def to_json(self) -> dict[str, Any]:
        return {"version": self.VERSION, "upto": self.upto, "groups": [[*k, n] for k, n in self.groups.items()],
                "examples": [[*k, *v] for k, v in self.examples.items()],
                "best": self.best, "initial": self.initial, "islands": [[k, v] for k, v in self.islands.items()],
                "improvements": self.improvements, "top": self.top, "active_seconds": self.active_seconds,
                "last_moment": self.last_moment, "last_iteration": self.last_iteration}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally | None:
        """The tally `to_json` wrote, or None when it is of another version."""
        if data.get("version") != cls.VERSION:
            return None
        return cls(upto=data["upto"], groups=collections.Counter({tuple(g[:-1]): g[-1] for g in data["groups"]}),
                   examples={(e[0], e[1]): [e[2], e[3]] for e in data["examples"]},
                   best=Valid(*data["best"]) if data["best"] else None,
                   initial=Valid(*data["initial"]) if data["initial"] else None,
                   islands=dict(data["islands"]),
                   improvements={k: list(v) for k, v in data["improvements"].items()}, top=data["top"],
                   active_seconds=data["active_seconds"], last_moment=data["last_moment"],
                   last_iteration=data["last_iteration"])

    def copy(self) -> Tally:
        return Tally.from_json(self.to_json())  # type: ignore[return-value]


def tally(db: ProgramDatabase, since: Tally | None = None, until: int | None = None,
          idle_after: float = IDLE_AFTER) -> Tally:
    """`since` (or nothing) plus the rows committed after it (up to program id `until`): one pass over their
    small columns in commit order (an index holds them: no row is read), one grouped query of the failed
    ones' errors, and the scores of older parents."""
    out = since.copy() if since is not None else Tally()
    P = ProgramRow
    start, failed = out.upto, [s.value for s in _FAILED]
    mine = (P.campaign_id == db.campaign_id, P.id > start) + ((P.id <= until,) if until is not None else ())
    child, proposal = (P.iteration > 0).label("child"), (P.parent_id.is_not(None)).label("proposal")
    scan = (select(P.id, P.status, P.proposer, P.iteration, P.parent_id, P.score, P.island,
                   db.epoch_seconds(P.created_at)).where(*mine).order_by(P.id))
    errors = (select(P.proposer, P.status, child, proposal, P.error, func.count(), func.min(P.id))
              .where(*mine, P.status.in_(failed)).group_by(P.proposer, P.status, child, proposal, P.error))
    groups, examples, islands, improvements = out.groups, out.examples, out.islands, out.improvements
    best, initial, top, active, last, previous, upto = (out.best, out.initial, out.top, out.active_seconds,
                                                        out.last_iteration, out.last_moment, out.upto)
    valid_value, failed_values = ProgramStatus.VALID.value, set(failed)
    scores: dict[int, float] = {}  # the valid programs of this pass, parents of later ones
    older: list[tuple[int, float, str]] = []  # (parent id, score, proposer) of a parent from before `since`
    with db.connect() as conn:
        for pid, status, proposer, iteration, parent_id, score, island, moment in conn.execute(scan).cursor:
            upto = pid
            if status not in failed_values:  # the failed ones are counted with their reasons below
                groups[(proposer, status, iteration > 0, parent_id is not None, "")] += 1
            if status == valid_value:
                if best is None or score > best.score:
                    best = Valid(pid, iteration, score, island, parent_id, proposer)
                if initial is None and iteration == 0:
                    initial = Valid(pid, iteration, score, island, parent_id, proposer)
                if island not in islands or score > islands[island]:
                    islands[island] = score
                if parent_id is not None:
                    parent = scores.get(parent_id)
                    if parent is None and parent_id <= start:
                        older.append((parent_id, score, proposer))
                    elif parent is not None and score > parent:
                        improvements.setdefault(proposer, [0, 0])[0] += 1
                    if top is not None and score > top:
                        improvements.setdefault(proposer, [0, 0])[1] += 1
                scores[pid] = score
                top = score if top is None or score > top else top
            if previous is not None and 0 <= moment - previous <= idle_after:
                active += moment - previous
            previous = moment
            if iteration > last:
                last = iteration
        for proposer, status, is_child, is_proposal, error, n, first in conn.execute(errors):
            reason = failure_reason(ProgramStatus(status), error or "")
            groups[(proposer, status, bool(is_child), bool(is_proposal), reason)] += n
            example = failure_example(ProgramStatus(status), error or "")
            if example and ((status, reason) not in examples or first < examples[(status, reason)][0]):
                examples[(status, reason)] = [first, example]
        wanted = sorted({parent_id for parent_id, _, _ in older})
        found: dict[int, float] = {}
        for at in range(0, len(wanted), 500):
            found.update(conn.execute(select(P.id, P.score).where(
                P.campaign_id == db.campaign_id, P.status == valid_value, P.id.in_(wanted[at:at + 500]))).all())
    for parent_id, score, proposer in older:
        if parent_id in found and score > found[parent_id]:
            improvements.setdefault(proposer, [0, 0])[0] += 1
    _bound_reasons(groups)
    kept = {(key[1], key[4]) for key in groups}
    for key in [key for key in examples if key not in kept]:  # folded into OTHER_REASONS
        del examples[key]
    out.best, out.initial, out.top, out.active_seconds, out.last_iteration, out.last_moment, out.upto = (
        best, initial, top, active, last, previous, upto)
    return out


def _bound_reasons(groups: collections.Counter) -> None:
    """Keep the `MAX_REASONS` commonest failure reasons of each status; count the others as
    `OTHER_REASONS` (edit failures have a few kinds only, and a prompt too large is never merged)."""
    by_status: dict[str, list[tuple[int, tuple]]] = collections.defaultdict(list)
    for key, n in groups.items():
        reason = key[4]
        if reason and reason not in (OTHER_REASONS, PROMPT_TOO_LARGE) and key[1] != ProgramStatus.EDIT_FAILED.value:
            by_status[key[1]].append((n, key))
    for keyed in by_status.values():
        if len(keyed) > MAX_REASONS:
            keyed.sort(key=lambda item: (-item[0], item[1]))  # the commonest first; ties in a fixed order
            for n, key in keyed[MAX_REASONS:]:
                del groups[key]
                groups[(*key[:4], OTHER_REASONS)] += n


def current(db: ProgramDatabase) -> Tally:
    """The campaign's tally now: the one its controller kept last (if any) and the rows committed since."""
    with db.connect() as conn:
        kept = None
        if inspect(conn).has_table(TallyRow.__tablename__):
            kept = conn.scalar(select(TallyRow.data).where(TallyRow.campaign_id == db.campaign_id))
    return tally(db, Tally.from_json(kept) if kept else None)


def checkpoint(db: ProgramDatabase, until: int | None = None) -> Tally:
    """Keep the campaign's current tally (up to program id `until`) in the database (a writable one); the
    controller calls it every `CHECKPOINT_EVERY` commits and when it stops, between two commits of its own
    (ids are then complete up to the last one: none is still to come below it). Retried through passing
    faults like the store's writes: it replaces the campaign's one row."""

    def write() -> Tally:
        now = current(db) if until is None else tally(db, until=until)
        with db.connect() as conn, conn.begin():
            conn.execute(delete(TallyRow).where(TallyRow.campaign_id == db.campaign_id))
            conn.execute(TallyRow.__table__.insert().values(campaign_id=db.campaign_id, upto=now.upto,
                                                            at=time.time(), data=now.to_json()))
        return now

    return db.retrying(write)


def figures(counted: Tally) -> Figures:
    """Counts, children's valid share, failure reasons, per-proposer outcomes, the last iteration and the
    active time of a tally."""
    out = Figures(last_iteration=counted.last_iteration, active_seconds=counted.active_seconds)
    proposals = []
    counts: collections.Counter = collections.Counter()
    for (proposer, status_value, is_child, is_proposal, reason), n in counted.groups.items():
        status = ProgramStatus(status_value)
        counts[status.value] += n
        if is_child:
            out.iterations += n
            if status.is_evaluated():
                out.children_evaluated += n
                out.children_valid += n * (status is ProgramStatus.VALID)
            if is_proposal:
                proposals.append((proposer, status, reason, n))
        if status in _FAILED:
            out.failures[(status.value, reason)] += n
            if (status.value, reason) in counted.examples:
                out.examples[(status.value, reason)] = counted.examples[(status.value, reason)][1]
    out.counts = dict(counts)
    out.outcomes = counted_outcomes(proposals)
    return out


def top_programs(db: ProgramDatabase, counted: Tally) -> tuple[Top | None, Top | None]:
    """The best valid program (the first of the highest score, as the indexes choose) and the initial one."""
    best, initial = counted.best, counted.initial
    found = {v.id: v for v in (best, initial) if v is not None}
    if not found:
        return None, None
    with db.connect() as conn:
        when = dict(conn.execute(select(ProgramRow.id, ProgramRow.created_at).where(ProgramRow.id.in_(found))).all())
    tops = {pid: Top(*_utc((v.id, v.iteration, v.score, v.proposer, when.get(pid)))) for pid, v in found.items()}
    return tops.get(best.id) if best else None, tops.get(initial.id) if initial else None


def leaders(db: ProgramDatabase) -> tuple[Top | None, Top | None]:
    """`top_programs` without a tally: the best valid program (the first of the highest score) and the
    initial one, two queries that read no full row (`evolve best`)."""
    P = ProgramRow
    columns = (P.id, P.iteration, P.score, P.proposer, P.created_at)
    valid = (P.campaign_id == db.campaign_id, P.status == ProgramStatus.VALID.value)
    with db.connect() as conn:
        best = conn.execute(select(*columns).where(*valid).order_by(P.score.desc(), P.id).limit(1)).first()
        initial = conn.execute(select(*columns).where(*valid, P.iteration == 0).order_by(P.id).limit(1)).first()
    return (Top(*_utc(best)) if best else None), (Top(*_utc(initial)) if initial else None)


def island_best(db: ProgramDatabase, islands: int, counted: Tally) -> list[float | None]:
    """The best score on each island: its own programs, those migrated to it, and the initial program
    (which seeds every island), as the indexes place them."""
    P, M = ProgramRow, MigrationRow
    moved = (select(M.to_island, func.max(P.score)).join(P, P.id == M.program_id)
             .where(M.campaign_id == db.campaign_id, P.status == ProgramStatus.VALID.value).group_by(M.to_island))
    with db.connect() as conn:
        found = list(conn.execute(moved).all())
    seed = counted.initial.score if counted.initial is not None else None
    found += [(n, seed) for n in range(islands) if seed is not None]
    found += [(island % islands, score) for island, score in counted.islands.items()]
    best: list[float | None] = [None] * islands
    for island, score in found:
        if 0 <= island < islands and score is not None and (best[island] is None or score > best[island]):
            best[island] = score
    return best


def unapplied_tail(db: ProgramDatabase) -> tuple[int, collections.Counter, str]:
    """`evolve.observe.outcomes.trailing_unapplied` of the campaign, reading only the rows after the last
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
