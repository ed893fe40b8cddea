"""SQLAlchemy tables of the program database (private: use `ProgramDatabase`)."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from evolve.errors import CampaignNotFound, RunDirError
from evolve.storage import faults

if TYPE_CHECKING:  # Alembic is imported only when a database is created or upgraded
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")  # Alembic's env.py and versions/, shipped as package data
FIRST_REVISION = "0001"  # the schema of every database written before Alembic, once its columns are added

_Json = JSON().with_variant(JSONB(), "postgresql")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    problem: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(_Json)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


# Every column of `programs` but the large ones (code, metrics, feedback, proposal, validation, choice): what
# reopening and `evolve status` read, in id order (revision 0002). On SQLite the index covers them all, so
# neither reads a row's code; PostgreSQL keeps code out of line (TOAST), and a wide btree entry could pass
# its size limit: there the index only orders.
_SMALL_COLUMNS = ("campaign_id", "id", "iteration", "status", "score", "island", "parent_id", "cost", "code_length",
                  "generation", "mode", "created_at", "proposer", "code_hash", "canonical_hash", "features", "error")


def _not_sqlite(*_: Any, dialect: Any, **__: Any) -> bool:
    return dialect.name != "sqlite"


class ProgramRow(Base):
    __tablename__ = "programs"
    __table_args__ = (
        Index("ix_programs_campaign_status", "campaign_id", "status"),
        Index("ix_programs_campaign_hash", "campaign_id", "code_hash"),
        Index("ix_programs_campaign_id", *_SMALL_COLUMNS).ddl_if(dialect="sqlite"),
        Index("ix_programs_campaign_id", "campaign_id", "id").ddl_if(callable_=_not_sqlite),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    iteration: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(Text)
    code_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(_Json, default=dict)
    features: Mapped[dict[str, Any]] = mapped_column(_Json, default=dict)
    feedback: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    island: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    proposer: Mapped[str] = mapped_column(String(255), default="")
    proposal: Mapped[str] = mapped_column(Text, default="")
    eval_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    propose_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    validation: Mapped[dict[str, Any] | None] = mapped_column(_Json, nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    choice: Mapped[str] = mapped_column(Text, default="", server_default="")
    canonical_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    mode: Mapped[str] = mapped_column(String(16), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    code_length: Mapped[int | None] = mapped_column(Integer, nullable=True)  # len(code), for the rebuild


# From revision 0005: the best valid programs in order (the first committed among equal scores) by an index
# walk, not a sort of every valid one (`evolve best`, the report's top programs).
Index("ix_programs_campaign_status_score", ProgramRow.campaign_id, ProgramRow.status, ProgramRow.score.desc(),
      ProgramRow.id)


class LLMCallRow(Base):
    """One request to a proposer and what came back: the record replay plays from."""

    __tablename__ = "llm_calls"
    __table_args__ = (
        Index("ix_llm_calls_campaign_iteration", "campaign_id", "iteration"),
        # from revision 0003: what `spend` sums, read without the wide rows
        Index("ix_llm_calls_spend", "campaign_id", "model", "prompt_tokens", "completion_tokens", "cost"),
        Index("ix_llm_calls_failed", "campaign_id", "model", "id", sqlite_where=text("response IS NULL"),
              postgresql_where=text("response IS NULL")),
        Index("ix_llm_calls_answered", "campaign_id", "model", "id", sqlite_where=text("response IS NOT NULL"),
              postgresql_where=text("response IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    iteration: Mapped[int] = mapped_column(Integer)
    parent_hash: Mapped[str] = mapped_column(String(64))
    inspiration_hashes: Mapped[list[Any]] = mapped_column(_Json, default=list)
    model: Mapped[str] = mapped_column(String(255), default="")
    messages: Mapped[list[Any]] = mapped_column(_Json)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LLMMessagesRow(Base):
    """The messages of one `llm_calls` row as zlib-compressed JSON (from revision 0002; its `messages` is []),
    kept apart so that the calls' table stays small to scan."""

    __tablename__ = "llm_messages"

    call_id: Mapped[int] = mapped_column(ForeignKey("llm_calls.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MigrationRow(Base):
    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    to_island: Mapped[int] = mapped_column(Integer)
    iteration: Mapped[int] = mapped_column(Integer)


class RunLockRow(Base):
    """The controller of a campaign (`evolve.storage.lock`): one row per running campaign, deleted when it stops."""

    __tablename__ = "run_locks"

    campaign: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64))
    run_dir: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[str] = mapped_column(String(32), default="")
    heartbeat: Mapped[float] = mapped_column(Float)  # the holder's time.time() at its last heartbeat


class StopRow(Base):
    """How one invocation of a campaign ended (`ProgramDatabase.record_stop`; from revision 0003)."""

    __tablename__ = "stops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # finished, interrupted or failed
    reason: Mapped[str] = mapped_column(Text)  # the stop condition, the signal, or the one-line error
    at: Mapped[float] = mapped_column(Float)  # time.time() when it stopped
    iterations: Mapped[int] = mapped_column(Integer)  # iterations committed by then
    host: Mapped[str] = mapped_column(String(255))  # the controller that stopped
    pid: Mapped[int] = mapped_column(Integer)


class TallyRow(Base):
    """A campaign's status figures up to a program id, kept by its controller (`evolve.observe.aggregates.checkpoint`)
    so that `evolve status` reads only the rows committed since; from revision 0004."""

    __tablename__ = "tallies"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    upto: Mapped[int] = mapped_column(Integer)  # the last program id it counts
    at: Mapped[float] = mapped_column(Float)  # time.time() when it was written
    data: Mapped[dict[str, Any]] = mapped_column(_Json)  # `evolve.observe.aggregates.Tally.to_json`


# Tables a reader can do without: an older database that lacks them is read as it is (`evolve status` says
# what it cannot tell, or counts every row), not refused.
READ_ONLY_IGNORED = ("run_locks", "stops", "tallies")
# Every revision in order, for the read-only path, which must not import Alembic (slow); a test checks it
# against Alembic's own list.
REVISIONS = ("0001", "0002", "0003", "0004", "0005")


def make_engine(url: str, read_only: bool = False, busy_seconds: float = 30.0) -> Engine:
    """Create an engine; SQLite gets WAL, synchronous=NORMAL and a busy timeout of `busy_seconds`. A damaged
    SQLite file or a full disk raises `DatabaseCorrupt` or `DiskFull` wherever it is met (`faults.watch`).

    A writable engine brings the schema to this evolve's Alembic head (creating it in an empty database,
    stamping and completing one written before Alembic); a read-only one creates nothing, changes
    nothing, and refuses writes at the connection. Either refuses a database of a newer evolve.
    """
    sqlite = url.startswith("sqlite")
    if sqlite and read_only:
        path = url.split(":///", 1)[1]
        # A reader of a WAL database needs its -wal and -shm files: a live campaign has them; of a closed
        # one, read the file as immutable rather than leave two new files beside it.
        quiet = "" if os.path.exists(f"{path}-wal") else "&immutable=1"
        engine = create_engine(f"sqlite:///file:{path}?mode=ro{quiet}&uri=true",
                               connect_args={"timeout": busy_seconds})
    elif sqlite:
        engine = create_engine(url, connect_args={"timeout": busy_seconds})
    else:  # PostgreSQL: SQLAlchemy's psycopg dialect sets read-only on each connection
        options = {"postgresql_readonly": True} if read_only else {}
        # a server that does not answer at all (a host gone) is a failed try after 10 s, not the system's minutes
        connect = {} if "connect_timeout" in url else {"connect_timeout": 10}
        engine = create_engine(url, pool_pre_ping=True, execution_options=options, connect_args=connect)
    faults.watch(engine, url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if not sqlite:
            return
        cursor = dbapi_connection.cursor()
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    try:
        if read_only:
            revision(engine, _label(url))  # a newer evolve's database is refused here; an older one by the caller
        else:
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def head() -> str:
    """The newest schema revision this evolve knows."""
    return REVISIONS[-1]


def revision(engine: Engine, label: str = "") -> str | None:
    """The database's Alembic revision: None when it has none (empty, or written before Alembic).

    Raises `RunDirError` when the revision is newer than this evolve knows.
    """
    if "alembic_version" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if found is not None and found not in REVISIONS:
        raise RunDirError(f"{_label(label or engine)} was written by a newer evolve "
                          f"(revision {found}); upgrade evolve")
    return found


def upgrade(engine: Engine) -> list[str]:
    """Bring the database to the head revision; return what was missing (`table` or `table.column`).

    An empty database gets the head schema from the models at once, stamped with the head revision, as
    Alembic's recipe for a new database has it: importing Alembic costs a campaign's start-up ~0.15 s (a
    unit test checks that the two schemas are the same)."""
    current = revision(engine)
    missing = missing_columns(engine)
    if current == head() and not missing:
        return []
    tables = set(inspect(engine).get_table_names())
    if current is None and not tables:
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
            _VERSION.create(conn)
            conn.execute(_VERSION.insert().values(version_num=head()))
        return missing
    from alembic import command

    with engine.begin() as conn:
        config = _alembic_config(conn)
        if current is None and tables & {t.name for t in Base.metadata.sorted_tables}:
            _add_first_revision_columns(conn)  # written before Alembic: complete revision 0001, then stamp it
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")
    return missing


# Alembic's own table of the revision, as Alembic creates it
_VERSION = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


def missing_columns(engine: Engine) -> list[str]:
    """`table.column` names this evolve's schema has and the database lacks (tables included)."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    missing = []
    for table in Base.metadata.sorted_tables:
        if table.name not in tables:
            missing.append(table.name)
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
    return missing


def check_readable(engine: Engine, label: str = "") -> None:
    """Refuse, read-only, a database older than this evolve can read (it lacks more than the tables of
    `READ_ONLY_IGNORED`), with the command that upgrades it."""
    current = revision(engine, label)
    missing = [m for m in missing_columns(engine) if m.split(".")[0] not in READ_ONLY_IGNORED]
    if current is None or missing:
        what = f"lacks {', '.join(missing[:3])}" if missing else f"is at schema revision {current or 'none'}"
        raise CampaignNotFound(f"{_label(label or engine)} {what}: it was written by an "
                               "older evolve (or is not an evolve database); upgrade it with `evolve upgrade RUN_DIR`")


def _label(url: str | Engine) -> str:
    """A database as errors name it: its URL without the password."""
    return (url.url if isinstance(url, Engine) else make_url(url)).render_as_string(hide_password=True)


@functools.lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:  # Alembic's own list of the migrations, which REVISIONS must match (a test checks)
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None))


def _alembic_config(connection: Any) -> AlembicConfig:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _add_first_revision_columns(conn: Any) -> None:
    """Complete a database written before Alembic to revision 0001: its missing tables and columns."""
    import importlib.util

    script = MIGRATIONS / "versions" / "0001_initial.py"
    spec = importlib.util.spec_from_file_location("_evolve_rev_0001", script)
    if spec is None or spec.loader is None:
        raise RunDirError(f"evolve's migration {script} is missing; reinstall evolve")
    first = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(first)
    first.complete(conn)
