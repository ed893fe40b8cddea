"""The program database: every program of a campaign, its proposer calls, migrations and stops.

Rows live in SQLAlchemy (SQLite by default, any URL works); each program is committed the moment it is
added, so the database file is the campaign's checkpoint. The store knows nothing of islands or cells:
which programs breed is the population's business (`evolve.population`), which it rebuilds from the
store's small columns (`members`) and hears of each commit through `subscribe`. The store's own
indexes (hashes for duplicates, counts, the best) are rebuilt from a few columns when a campaign
resumes; full programs, code included, are read on demand and kept in a small LRU.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import socket
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, NamedTuple, Self, TypeVar

from sqlalchemy import Connection, Float, Row, Table, func, select
from sqlalchemy.orm import sessionmaker

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.errors import CampaignNotFound, ReadOnlyDatabase
from evolve.program import Program, ProgramStatus, beats
from evolve.storage._orm import (
    CampaignRow,
    LLMCallRow,
    LLMMessagesRow,
    MigrationRow,
    ProgramRow,
    StopRow,
    check_readable,
    make_engine,
)
from evolve.storage.faults import Outages
from sandboxes import candidate_text

__all__ = ["Member", "ProgramDatabase", "Summary", "count_improvements"]

_ERROR_CHARS = 2000  # of an error (the gate's `database` cap holds the rest of the candidate's text)
_PROPOSAL_CHARS = 20000
_CACHED_PROGRAMS = 4096  # full programs (code included) kept in memory, least recently used dropped
STOP_STATES = ("finished", "interrupted", "failed")
# what `_rebuild` sets: opened with indexes=False, they are built on first use (`ProgramDatabase.__getattr__`)
_INDEXES = frozenset({"_hashes", "_canonical", "_cache", "_failures", "_best", "_initial", "_last_iteration",
                      "_count", "_iterations", "_numbers", "_cost"})


def _raw_rows(conn: Any, query: Any) -> Iterator[tuple]:
    """The rows of a query of plain columns as the driver returns them, without SQLAlchemy's per-row
    processing (several microseconds a row, the most of a rebuild); for the scans of every row only."""
    cursor = conn.execute(query).cursor
    while batch := cursor.fetchmany(5000):
        yield from batch


class Summary(NamedTuple):
    """A program's small columns, with the names and types of `Program`'s (`ProgramDatabase.summaries`)."""

    id: int
    iteration: int
    status: ProgramStatus
    code_hash: str
    score: float | None
    error: str
    parent_id: int | None
    island: int
    generation: int
    proposer: str
    cost: float
    mode: str


def count_improvements(valid: Iterable[tuple[int, int | None, float, str]]) -> dict[str, tuple[int, int]]:
    """Per proposer, from the valid programs' (id, parent id, score, proposer) in commit order: how many beat
    their (valid) parent, and how many beat every earlier program (new bests; the initial program aside)."""
    scores: dict[int, float] = {}
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    best = None
    for pid, parent_id, score, proposer in valid:
        if parent_id is not None:
            parent = scores.get(parent_id)
            if parent is not None and score > parent:
                out[proposer][0] += 1
            if best is not None and score > best:
                out[proposer][1] += 1
        scores[pid] = score
        best = score if best is None else max(best, score)
    return {proposer: (a, b) for proposer, (a, b) in out.items()}


class Member(NamedTuple):
    """A valid program's small columns: what a population needs of it (its code stays in the database).

    `features` holds the values of the feature dimensions asked for (`ProgramDatabase.members`), or all of
    the program's features for a program just committed (`Member.of`).
    """

    id: int
    iteration: int
    score: float
    island: int
    parent_id: int | None
    code_hash: str
    code_length: int
    features: Mapping[str, Any]

    @classmethod
    def of(cls, program: Program) -> Member:
        """The member of a valid program snapshot."""
        if program.score is None:
            raise ValueError(f"program {program.id} has no score: only valid programs are members")
        return cls(program.id, program.iteration, program.score, program.island, program.parent_id,
                   program.code_hash, len(program.code), program.features)


_PROGRAMS, _CALLS, _MESSAGES = (ProgramRow.metadata.tables[row.__tablename__]
                                for row in (ProgramRow, LLMCallRow, LLMMessagesRow))
_STOPS, _MIGRATIONS = (ProgramRow.metadata.tables[row.__tablename__] for row in (StopRow, MigrationRow))
T = TypeVar("T")


def _insert(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """Insert one row; return its new primary key."""
    key = conn.execute(table.insert(), values).inserted_primary_key
    if key is None:  # SQLAlchemy has none only for a many-row insert
        raise RuntimeError(f"inserting into {table.name} returned no primary key")
    return int(key[0])


def _snapshot(row: ProgramRow | SimpleNamespace | Row[Any]) -> Program:
    return Program(
        id=row.id, iteration=row.iteration, status=ProgramStatus(row.status), code=row.code,
        code_hash=row.code_hash, score=row.score, metrics=dict(row.metrics or {}),
        features=dict(row.features or {}), feedback=row.feedback, error=row.error,
        parent_id=row.parent_id, island=row.island, generation=row.generation, proposer=row.proposer,
        proposal=row.proposal, eval_seconds=row.eval_seconds, propose_seconds=row.propose_seconds,
        validation=dict(row.validation) if row.validation is not None else None,
        prompt_tokens=row.prompt_tokens or 0, completion_tokens=row.completion_tokens or 0, cost=row.cost or 0.0,
        choice=row.choice or "", canonical_hash=row.canonical_hash or "", mode=row.mode or "",
        created_at=row.created_at,
    )


class ProgramDatabase:
    """Stores a campaign's programs, its proposer calls, migrations and stops.

    Not thread-safe: the campaign controller, a single asyncio task, is its only user (`aadd` and
    `arecord_call` commit on a writer thread of its own, in order). Returned `Program`s are frozen snapshots.

    Passing faults (a server restarting, a dropped connection, a locked SQLite file) are retried with
    backoff for up to `config.retry_seconds` (`evolve.storage.faults`), each row committed once: a write whose
    commit is unknown (a connection lost during COMMIT) looks for its row before it inserts again. Longer,
    or on a full disk, a write raises `DatabaseUnavailable` (`DiskFull`); a damaged file `DatabaseCorrupt`.

    Args:
        url: SQLAlchemy URL, e.g. `sqlite:///runs/x/programs.db` or `postgresql+psycopg://...`.
        campaign: the campaign's unique name in this database (one database may hold many).
        problem: the problem's name, recorded with the campaign.
        config: the database settings (`failed_edits_in_prompt` is the store's; the rest the population's).
        features: the problem's feature dimensions, for readers that rebuild a population (`members`).
        campaign_config: the composed config, stored with the campaign row when it is created.
        read_only: open an existing campaign to read it: nothing is created or changed (the
            connection refuses writes too), and a missing campaign raises `CampaignNotFound`.
        indexes: build the in-memory indexes now (reading every valid program's small columns); a reader
            that needs only aggregates in SQL (`evolve status`) passes False, and the indexes are then
            built the first time something uses them.
    """

    def __init__(self, url: str, campaign: str, problem: str = "", config: DatabaseConfig | None = None,
                 features: Sequence[FeatureDimension] = (),
                 campaign_config: dict[str, Any] | None = None, *, read_only: bool = False,
                 indexes: bool = True) -> None:
        self._writer: ThreadPoolExecutor | None = None  # `aadd` and `arecord_call`: one thread, commits in order
        self._last_write: Future | None = None  # the writer's latest job: a write on the caller's thread waits for it
        self._listeners: list[Callable[[Program], None]] = []
        self.config = config or DatabaseConfig()
        self.features = list(features)
        self.read_only = read_only
        self._outages = Outages(url, self.config.retry_seconds)
        busy = min(30.0, max(1.0, self.config.retry_seconds / 3))  # SQLite's own wait for a lock, per try
        self._engine = make_engine(url, read_only=read_only, busy_seconds=busy)
        if read_only:
            try:
                check_readable(self._engine, url)
            except BaseException:
                self._engine.dispose()
                raise
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        with self._sessions() as s:
            row = s.scalar(select(CampaignRow).where(CampaignRow.name == campaign))
            if row is None and read_only:
                names = s.scalars(select(CampaignRow.name)).all()
                self._engine.dispose()
                raise CampaignNotFound(f"no campaign named {campaign!r} in {url}; it holds: "
                                       f"{', '.join(map(repr, names)) or 'none'}")
            if row is None:
                row = CampaignRow(name=campaign, problem=problem, config=campaign_config or {})
                s.add(row)
                s.commit()
            self.campaign_id = row.id
        if indexes:
            self._rebuild()

    def __getattr__(self, name: str) -> Any:
        if name in _INDEXES and "_engine" in self.__dict__ and "_hashes" not in self.__dict__:
            self._rebuild()  # opened with indexes=False: built when first used
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyDatabase("this ProgramDatabase was opened read-only; open it with read_only=False "
                                   "to write")

    # -- indexes ----------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Rebuild the store's in-memory indexes from the rows (used at start and on resume).

        Reads only the columns they need, in id order through the (campaign, id) index (on SQLite it covers
        them: no row's code is read); code is read later, for the programs asked for.
        """
        self._hashes: dict[str, int] = {}
        self._canonical: dict[str, int] = {}
        self._cache: collections.OrderedDict[int, Program] = collections.OrderedDict()
        self._failures: collections.deque[Program] = collections.deque(
            maxlen=max(1, self.config.failed_edits_in_prompt))
        self._best: Program | None = None
        self._initial: Program | None = None
        self._last_iteration = -1
        self._count = 0
        self._iterations = 0
        self._numbers: set[int] = set()
        self._cost = 0.0
        failures: collections.deque[int] = collections.deque(maxlen=self._failures.maxlen)
        best = initial = None  # (score, id)
        P = ProgramRow
        query = (select(P.id, P.iteration, P.status, P.score, P.code_hash, P.canonical_hash, P.cost)
                 .where(P.campaign_id == self.campaign_id).order_by(P.id))
        valid, edit_failed = ProgramStatus.VALID.value, ProgramStatus.EDIT_FAILED.value
        verdicts = (valid, ProgramStatus.INVALID.value)
        with self._engine.connect() as conn:
            for pid, iteration, status, score, code_hash, canonical, cost in _raw_rows(conn, query):
                self._count_row(iteration, cost or 0.0)
                if status in verdicts:
                    self._hashes.setdefault(code_hash, pid)
                    if canonical:
                        self._canonical.setdefault(canonical, pid)
                if status == edit_failed:
                    failures.append(pid)
                if status != valid:
                    continue
                if initial is None and iteration == 0:
                    initial = pid
                if best is None or score > best[0]:
                    best = (score, pid)
        self._best = self._load(best[1]) if best else None
        self._initial = self._load(initial) if initial is not None else None
        for pid in failures:
            if (failure := self._read(pid)) is not None:
                self._failures.append(failure)

    def members(self, features: Sequence[str] = ()) -> Iterator[Member]:
        """Every valid program's small columns in commit order, with the named feature values (None where
        a program has none): what a population is rebuilt from, without reading any code."""
        P = ProgramRow
        dims = [P.features[name].as_float() for name in features]
        query = (select(P.id, P.iteration, P.score, P.island, P.parent_id, P.code_hash, P.code_length, *dims)
                 .where(P.campaign_id == self.campaign_id, P.status == ProgramStatus.VALID.value).order_by(P.id))
        names = tuple(features)
        with self._engine.connect() as conn:
            for pid, iteration, score, island, parent_id, code_hash, length, *values in _raw_rows(conn, query):
                yield Member(pid, iteration, score, island, parent_id, code_hash, length or 0,
                             {n: v for n, v in zip(names, values) if v is not None})

    def subscribe(self, listener: Callable[[Program], None]) -> None:
        """Call `listener(program)` with each program once it is committed and indexed (on the thread that
        added it: the campaign's event loop)."""
        self._listeners.append(listener)

    def _count_row(self, iteration: int, cost: float) -> None:
        self._count += 1
        self._iterations += iteration > 0
        self._numbers.add(iteration)
        self._cost += cost
        self._last_iteration = max(self._last_iteration, iteration)

    def _index(self, program: Program) -> None:
        self._count_row(program.iteration, program.cost)
        if program.status in (ProgramStatus.VALID, ProgramStatus.INVALID):  # a verdict (not an evaluator's bug)
            self._hashes.setdefault(program.code_hash, program.id)
            if program.canonical_hash:
                self._canonical.setdefault(program.canonical_hash, program.id)
        if program.status is ProgramStatus.EDIT_FAILED:
            self._failures.append(program)
        if program.status is ProgramStatus.VALID:
            self._remember(program)
            if program.iteration == 0 and self._initial is None:
                self._initial = program
            if self._best is None or beats(program.score, self._best.score):
                self._best = program
        for listener in self._listeners:
            listener(program)

    # -- full programs, read on demand --------------------------------------------------------------
    def _remember(self, program: Program) -> Program:
        self._cache[program.id] = program
        self._cache.move_to_end(program.id)
        if len(self._cache) > _CACHED_PROGRAMS:
            self._cache.popitem(last=False)
        return program

    def _read_many(self, ids: Sequence[int]) -> dict[int, Program]:
        """Programs of this campaign by id, in one query (Core rows: no ORM session for a read)."""
        table = ProgramRow.__table__
        query = select(table).where(table.c.id.in_(ids), table.c.campaign_id == self.campaign_id)

        def read(_again: bool) -> dict[int, Program]:
            with self._engine.connect() as conn:
                return {row.id: _snapshot(row) for row in conn.execute(query)}

        return self._outages.run(read)

    def _read(self, program_id: int) -> Program | None:
        return self._read_many([program_id]).get(program_id)

    def get_many(self, ids: Sequence[int]) -> list[Program]:
        """Programs in full, in the order asked: from the LRU, the others from the database in one query
        (then kept); an id of another campaign or none raises KeyError."""
        cache = self._cache
        found = {}
        for pid in ids:
            if pid in cache:
                cache.move_to_end(pid)
                found[pid] = cache[pid]
        missing = [pid for pid in ids if pid not in found]
        if missing:
            for program in self._read_many(missing).values():
                found[program.id] = self._remember(program)
        return [found[pid] for pid in ids]

    def read_many(self, ids: Sequence[int]) -> dict[int, Program]:
        """Programs in full by id (those that exist in this campaign), for readers of a few hundred: from the
        LRU where the indexes are built, the others read in a few queries and not kept."""
        cache = self.__dict__.get("_cache")  # opened without indexes: not built for this
        found = {pid: cache[pid] for pid in ids if cache is not None and pid in cache}
        missing = [pid for pid in dict.fromkeys(ids) if pid not in found]
        for at in range(0, len(missing), 500):
            found.update(self._read_many(missing[at:at + 500]))
        return found

    def _load(self, program_id: int) -> Program:
        return self.get_many([program_id])[0]

    # -- writing ----------------------------------------------------------------------------------
    def add(self, *, iteration: int, status: ProgramStatus, code: str, code_hash: str,
            score: float | None = None, metrics: dict[str, Any] | None = None,
            features: dict[str, float] | None = None, feedback: str = "", error: str = "",
            parent: Program | None = None, island: int = 0, proposer: str = "", proposal: str = "",
            eval_seconds: float | None = None, propose_seconds: float | None = None, prompt_tokens: int = 0,
            completion_tokens: int = 0, cost: float = 0.0, choice: str = "", canonical_hash: str = "",
            mode: str = "") -> Program:
        """Commit one program at once and index it; return its snapshot."""
        fields = dict(locals())
        del fields["self"]
        row = self._program_row(**fields)
        self._after_queued_writes()
        self._insert_program(row)
        return self._indexed(row)

    async def aadd(self, **fields: Any) -> Program:
        """`add` with the commit on the database's writer thread, off the event loop (a database across a
        network answers in milliseconds); the indexes are updated here once it is committed. A caller
        cancelled meanwhile still gets its program committed and indexed before the cancellation goes on."""
        row = self._program_row(**fields)
        try:
            await self._on_writer(self._insert_program, row, False)
        except asyncio.CancelledError:
            if "id" in row:  # committed: indexed as `add` would have
                self._indexed(row)
            raise
        return self._indexed(row)

    def _program_row(self, *, iteration: int, status: ProgramStatus, code: str, code_hash: str,
                     score: float | None = None, metrics: dict[str, Any] | None = None,
                     features: dict[str, float] | None = None, feedback: str = "", error: str = "",
                     parent: Program | None = None, island: int = 0, proposer: str = "", proposal: str = "",
                     eval_seconds: float | None = None, propose_seconds: float | None = None,
                     prompt_tokens: int = 0, completion_tokens: int = 0, cost: float = 0.0, choice: str = "",
                     canonical_hash: str = "", mode: str = "") -> dict[str, Any]:
        self._writable()
        return dict(
            campaign_id=self.campaign_id, iteration=iteration, status=status.value, code=code,
            code_hash=code_hash, score=score if status is ProgramStatus.VALID else None,
            metrics=metrics or {}, features=features or {}, feedback=candidate_text(feedback, "database"),
            error=candidate_text(error, "database", _ERROR_CHARS), parent_id=parent.id if parent else None,
            island=island,
            generation=parent.generation + 1 if parent else 0, proposer=proposer,
            proposal=proposal[:_PROPOSAL_CHARS], eval_seconds=eval_seconds,
            propose_seconds=propose_seconds, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cost=cost, choice=choice, canonical_hash=canonical_hash, mode=mode, code_length=len(code),
            created_at=datetime.now(UTC),
        )

    def _insert_program(self, row: dict[str, Any], after_giving_up: bool = True) -> None:
        P = _PROGRAMS.c  # its creation time (to the microsecond) and code make a row's key

        def insert(again: bool) -> int:
            with self._engine.begin() as conn:  # one INSERT (Core: the ORM's unit of work costs more than it)
                if again:  # the last try may have committed before its connection was lost
                    found = conn.execute(select(P.id).where(
                        P.campaign_id == row["campaign_id"], P.code_hash == row["code_hash"],
                        P.iteration == row["iteration"], P.created_at == row["created_at"])).scalar()
                    if found is not None:
                        return found
                return _insert(conn, _PROGRAMS, row)

        row["id"] = self._outages.run(insert, after_giving_up=after_giving_up)  # set once committed (`aadd` reads it)

    def _indexed(self, row: dict[str, Any]) -> Program:
        program = _snapshot(SimpleNamespace(validation=None, **row))
        self._index(program)
        return program

    def record_call(self, *, iteration: int, parent_hash: str, messages: list[dict[str, str]],
                    inspiration_hashes: list[str] | None = None, model: str = "",
                    response: str | None = None, error: str = "", prompt_tokens: int = 0,
                    completion_tokens: int = 0, cost: float = 0.0, seconds: float = 0.0) -> None:
        """Commit one proposer request and its response (or error), for accounting and replay."""
        fields = dict(locals())
        del fields["self"]
        call = self._call_row(**fields)
        self._after_queued_writes()
        self._insert_call(call)

    async def arecord_call(self, **fields: Any) -> None:
        """`record_call` on the database's writer thread, off the event loop (committed in order with
        `aadd`'s programs)."""
        await self._on_writer(self._insert_call, self._call_row(**fields), False)

    def _call_row(self, *, iteration: int, parent_hash: str, messages: list[dict[str, str]],
                  inspiration_hashes: list[str] | None = None, model: str = "", response: str | None = None,
                  error: str = "", prompt_tokens: int = 0, completion_tokens: int = 0, cost: float = 0.0,
                  seconds: float = 0.0) -> dict[str, Any]:
        self._writable()
        return dict(campaign_id=self.campaign_id, iteration=iteration, parent_hash=parent_hash,
                    inspiration_hashes=list(inspiration_hashes or []), model=model, messages=[], response=response,
                    error=candidate_text(error, "database", _ERROR_CHARS), prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost=cost, seconds=seconds, created_at=datetime.now(UTC), prompt=messages)

    def _insert_call(self, call: dict[str, Any], after_giving_up: bool = True) -> None:
        # the messages are kept apart, compressed: here, on the writer thread for `arecord_call`, not on the loop
        packed = zlib.compress(json.dumps(call.pop("prompt")).encode(), 6)
        C = _CALLS.c

        def insert(again: bool) -> None:
            with self._engine.begin() as conn:
                if again and conn.execute(select(C.id).where(  # committed by the try whose connection was lost
                        C.campaign_id == call["campaign_id"], C.iteration == call["iteration"],
                        C.created_at == call["created_at"])).first() is not None:
                    return
                call_id = _insert(conn, _CALLS, call)
                conn.execute(_MESSAGES.insert(), {"call_id": call_id, "data": packed})

        self._outages.run(insert, after_giving_up=after_giving_up)

    async def _on_writer(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run `function(*args)` on the writer thread; wait for it to end even when cancelled meanwhile
        (what it commits is never half-known to the caller), then let the cancellation go on."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="evolve-db-writer")
        self._last_write = self._writer.submit(function, *args)
        future = asyncio.wrap_future(self._last_write)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    def _after_queued_writes(self) -> None:
        """Wait for the writer's queued jobs, so that a write on this thread commits after them: rows and
        calls are committed in the order they were asked for (replay plays calls in that order)."""
        last = self._last_write
        if last is not None and not last.done():
            futures.wait([last])

    def calls(self, iteration: int | Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Every recorded proposer call (or one iteration's, or those of several) in order, with its messages,
        as plain dicts."""
        columns = list(LLMCallRow.__table__.columns)
        where = [LLMCallRow.campaign_id == self.campaign_id]
        numbers: list[Sequence[int]] = [()]
        if isinstance(iteration, int):
            where.append(LLMCallRow.iteration == iteration)
        elif iteration is not None:
            numbers = [iteration[at:at + 500] for at in range(0, len(iteration), 500)]
        out = []
        with self._engine.connect() as conn:
            for chunk in numbers:
                chosen = [LLMCallRow.iteration.in_(chunk)] if chunk else []
                query = (select(*columns, LLMMessagesRow.data)
                         .outerjoin(LLMMessagesRow, LLMMessagesRow.call_id == LLMCallRow.id).where(*where, *chosen)
                         .order_by(LLMCallRow.id))
                for *values, packed in conn.execute(query):
                    call = dict(zip((c.key for c in columns), values))
                    if packed is not None:
                        call["messages"] = json.loads(zlib.decompress(packed))
                    out.append(call)
        return out

    def spend(self, improvements: Mapping[str, Sequence[int]] | None = None) -> dict[str, dict[str, Any]]:
        """Per proposer: calls, failures, tokens, cost, programs that beat their parent, and how many of
        its latest calls failed in a row (`failing`) with the last one's error (`last_error`).

        `improvements` is `count_improvements` of the valid programs, when the caller has counted them (`evolve
        status` keeps a tally); else the valid programs are read here.
        """
        C = LLMCallRow
        mine = C.campaign_id == self.campaign_id
        with self._sessions() as s:  # each query reads an index of llm_calls, not its wide rows
            calls = s.execute(select(C.model, func.count(), func.sum(C.prompt_tokens), func.sum(C.completion_tokens),
                                     func.sum(C.cost)).where(mine).group_by(C.model)).all()
            failed = dict(s.execute(select(C.model, func.count()).where(mine, C.response.is_(None))
                                    .group_by(C.model)).all())
            failing = {}
            for model, *_ in calls:  # per model, a max and a count of failures on the partial indexes
                last_ok = s.scalar(select(func.max(C.id)).where(mine, C.model == model, C.response.is_not(None)))
                after = (mine, C.model == model, C.response.is_(None), C.id > (last_ok or 0))
                n = s.scalar(select(func.count()).select_from(C).where(*after))
                error = s.scalar(select(C.error).where(*after).order_by(C.id.desc()).limit(1)) if n else ""
                failing[model] = (n or 0, " ".join((error or "").split())[:300])
        out = {model: {"calls": n, "failed": failed.get(model, 0), "prompt_tokens": pt or 0,
                       "completion_tokens": ct or 0, "cost": cost or 0.0, "improvements": 0, "new_bests": 0,
                       "failing": failing[model][0], "last_error": failing[model][1]}
               for model, n, pt, ct, cost in calls}
        if improvements is None:
            P = ProgramRow
            query = (select(P.id, P.parent_id, P.score, P.proposer)
                     .where(P.campaign_id == self.campaign_id, P.status == ProgramStatus.VALID.value).order_by(P.id))
            with self._engine.connect() as conn:
                improvements = count_improvements(_raw_rows(conn, query))
        for proposer, (improved, new_bests) in improvements.items():
            if proposer in out:
                out[proposer]["improvements"], out[proposer]["new_bests"] = improved, new_bests
        return out

    def record_stop(self, state: str, reason: str) -> None:
        """Record how this invocation of the campaign ended: `finished`, `interrupted` or `failed`, with the
        stop condition, the signal or the one-line error (what `evolve status` shows afterwards)."""
        self._writable()
        if state not in STOP_STATES:
            raise ValueError(f"state={state!r}: use one of {', '.join(STOP_STATES)}")
        row = dict(campaign_id=self.campaign_id, state=state, reason=candidate_text(reason, "database", _ERROR_CHARS),
                   at=time.time(),
                   iterations=self.iterations, host=socket.gethostname(), pid=os.getpid())

        def insert(again: bool) -> None:
            with self._engine.begin() as conn:
                if again and conn.execute(select(_STOPS.c.id).where(_STOPS.c.campaign_id == self.campaign_id,
                                                                    _STOPS.c.at == row["at"])).first() is not None:
                    return
                conn.execute(_STOPS.insert(), row)

        self._outages.run(insert)

    def connect(self) -> Any:
        """A read connection (use it in `with`), for aggregate queries in SQL (`evolve.observe.aggregates`)."""
        return self._engine.connect()

    def retrying(self, function: Callable[[], T]) -> T:
        """Return `function()` retried through passing faults as the store's own writes are (it must be safe
        to run again after a try whose commit is unknown: a read, or a write that replaces its row); once the
        database was given up, not tried at all until something else succeeds."""
        return self._outages.run(lambda _again: function(), after_giving_up=False)

    def stop_waiting(self) -> None:
        """Stop waiting for a database that does not answer: writes under way and to come fail at their next
        failed try (a signal stops the campaign; what was in flight is not kept anyway)."""
        self._outages.stop_waiting()

    @property
    def unavailable(self) -> str | None:
        """Why the database does not answer, while an outage lasts (None while it answers)."""
        return self._outages.cause

    @property
    def total_cost(self) -> float:
        """USD spent on proposals in this campaign."""
        return self._cost

    def set_validation(self, program_id: int, validation: dict[str, Any]) -> Program:
        """Store a program's held-out scores (committed at once); return the updated snapshot."""
        self._writable()

        def update(_again: bool) -> Program:  # the same UPDATE twice is the same row
            with self._sessions() as s:
                row = s.get(ProgramRow, program_id)
                if row is None:
                    raise KeyError(f"no program {program_id} in this campaign")
                row.validation = {**validation, "feedback": candidate_text(validation.get("feedback", ""), "database")}
                s.commit()
                return _snapshot(row)

        program = self._outages.run(update)
        if "_cache" not in self.__dict__:  # opened without indexes: none to update
            return program
        if program_id in self._cache:
            self._cache[program_id] = program
        if self._best is not None and self._best.id == program_id:
            self._best = program
        if self._initial is not None and self._initial.id == program_id:
            self._initial = program
        return program

    def record_migrations(self, moves: Sequence[tuple[int, int]], iteration: int) -> None:
        """Commit a migration's moves, (program id, to island), made after `iteration`."""
        self._writable()
        if not moves:
            return
        M = _MIGRATIONS.c
        rows = [dict(campaign_id=self.campaign_id, program_id=pid, to_island=target, iteration=iteration)
                for pid, target in moves]
        last: list[int] = []  # the campaign's last move before the first try that got as far as reading it

        def insert(again: bool) -> None:
            with self._engine.begin() as conn:
                mine = M.campaign_id == self.campaign_id
                if again and last and conn.execute(select(M.id).where(
                        mine, M.id > last[0], M.iteration == iteration, M.program_id == moves[0][0])).first():
                    return  # committed by the try whose connection was lost
                if not last:
                    last.append(conn.execute(select(func.coalesce(func.max(M.id), 0)).where(mine)).scalar_one())
                conn.execute(_MIGRATIONS.insert(), rows)

        self._outages.run(insert)

    def migrations(self) -> list[tuple[int, int]]:
        """Every recorded move, (program id, to island), in the order made."""
        with self._engine.connect() as conn:
            return [(pid, island) for pid, island in conn.execute(
                select(MigrationRow.program_id, MigrationRow.to_island)
                .where(MigrationRow.campaign_id == self.campaign_id).order_by(MigrationRow.id))]

    # -- reading ----------------------------------------------------------------------------------
    def seen(self, code_hash: str) -> Program | None:
        """The evaluated program with this normalised hash, if any."""
        pid = self._hashes.get(code_hash)
        return self.get(pid) if pid is not None else None

    def seen_canonical(self, canonical_hash: str) -> Program | None:
        """The evaluated program with these canonical tokens (the same up to names and comments), if any."""
        pid = self._canonical.get(canonical_hash)
        return self.get(pid) if pid is not None else None

    def get(self, program_id: int) -> Program | None:
        """One program by id (from memory when valid, else from the database)."""
        cache = self.__dict__.get("_cache")  # opened without indexes: not built for this
        if cache is not None and program_id in cache:
            cache.move_to_end(program_id)
            return cache[program_id]
        return self._read(program_id)

    def best(self) -> Program | None:
        """The valid program with the highest score."""
        return self._best

    def initial(self) -> Program | None:
        """The evaluated initial program (iteration 0), if it was valid."""
        return self._initial

    def recent_failures(self) -> list[Program]:
        """The latest failed edits, newest last, for prompts."""
        return list(self._failures)

    @property
    def size(self) -> int:
        """Rows of this campaign, every status included."""
        return self._count

    @property
    def iterations(self) -> int:
        """Iterations committed (rows past the initial program's, every status included)."""
        return self._iterations

    def has_iteration(self, iteration: int) -> bool:
        """Whether a row for this iteration number is committed."""
        return iteration in self._numbers

    @property
    def last_iteration(self) -> int:
        """The highest iteration number committed (-1 when empty)."""
        return self._last_iteration

    def counts(self) -> dict[str, int]:
        """Programs per status, counted in the database."""
        with self._sessions() as s:
            rows = s.execute(select(ProgramRow.status, func.count()).where(
                ProgramRow.campaign_id == self.campaign_id).group_by(ProgramRow.status)).all()
        return dict(rows)

    def latest(self, status: ProgramStatus) -> Program | None:
        """The last committed program of this status, if any."""
        query = (select(ProgramRow).where(ProgramRow.campaign_id == self.campaign_id,
                                          ProgramRow.status == status.value).order_by(ProgramRow.id.desc()).limit(1))
        with self._sessions() as s:
            row = s.scalar(query)
            return _snapshot(row) if row is not None else None

    def epoch_seconds(self, column: Any) -> Any:
        """A SQL expression of a timestamp column as seconds since the epoch (a float), in this dialect."""
        if self._engine.dialect.name == "sqlite":
            return ((func.julianday(column) - 2440587.5) * 86400.0).cast(Float)
        return func.extract("epoch", column).cast(Float)

    def summaries(self) -> Iterator[Summary]:
        """Every program of the campaign in commit order, as a `Summary` (no code, metrics, features,
        feedback, proposal or time): the columns `evolve status` reads, without the large ones."""
        P = ProgramRow
        query = (select(*(getattr(P, name) for name in Summary._fields)).where(P.campaign_id == self.campaign_id)
                 .order_by(P.id))
        statuses = {s.value: s for s in ProgramStatus}
        with self._engine.connect() as conn:
            for pid, iteration, status, *rest in _raw_rows(conn, query):
                yield Summary(pid, iteration, statuses[status], *rest)

    def columns(self, *names: str, statuses: Sequence[ProgramStatus] = (), last: int | None = None) -> Iterator[tuple]:
        """The named `programs` columns of every program of the campaign in commit order (for readers that
        need a few columns `Summary` lacks, such as `created_at` or `features`); only those of `statuses`
        when given, only the `last` ones when given."""
        table = ProgramRow.__table__
        unknown = [n for n in names if n not in table.c]
        if unknown:
            raise ValueError(f"programs has no column {unknown[0]!r}; it has {', '.join(table.c.keys())}")
        query = select(*(table.c[n] for n in names)).where(table.c.campaign_id == self.campaign_id)
        if statuses:
            query = query.where(table.c.status.in_([s.value for s in statuses]))
        if last is not None:
            inner = query.add_columns(table.c.id.label("_order")).order_by(table.c.id.desc()).limit(last).subquery()
            query = select(*(inner.c[n] for n in names)).order_by(inner.c["_order"])
        else:
            query = query.order_by(table.c.id)
        with self._engine.connect() as conn:
            yield from (tuple(row) for row in conn.execute(query))

    def programs(self, status: ProgramStatus | None = None) -> Iterator[Program]:
        """Every program of the campaign in commit order, optionally of one status."""
        query = select(ProgramRow).where(ProgramRow.campaign_id == self.campaign_id)
        if status is not None:
            query = query.where(ProgramRow.status == status.value)
        with self._sessions() as s:
            for row in s.scalars(query.order_by(ProgramRow.id)).yield_per(500):
                yield _snapshot(row)

    def close(self) -> None:
        """Wait for the writes under way, then release the database connections."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

