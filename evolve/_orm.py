"""SQLAlchemy tables of the program database (private: use `ProgramDatabase`)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, create_engine, event, inspect, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

_Json = JSON().with_variant(JSONB(), "postgresql")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    problem: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(_Json)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ProgramRow(Base):
    __tablename__ = "programs"
    __table_args__ = (
        Index("ix_programs_campaign_status", "campaign_id", "status"),
        Index("ix_programs_campaign_hash", "campaign_id", "code_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    iteration: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(Text)
    code_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(_Json, default=dict)
    features: Mapped[dict[str, Any]] = mapped_column(_Json, default=dict)
    feedback: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    island: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    proposer: Mapped[str] = mapped_column(String(255), default="")
    proposal: Mapped[str] = mapped_column(Text, default="")
    eval_seconds: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    propose_seconds: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    validation: Mapped[Optional[dict[str, Any]]] = mapped_column(_Json, nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    choice: Mapped[str] = mapped_column(Text, default="")
    canonical_hash: Mapped[str] = mapped_column(String(64), default="")
    mode: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LLMCallRow(Base):
    """One request to a proposer and what came back: the record replay plays from."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_campaign_iteration", "campaign_id", "iteration"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    iteration: Mapped[int] = mapped_column(Integer)
    parent_hash: Mapped[str] = mapped_column(String(64))
    inspiration_hashes: Mapped[list[Any]] = mapped_column(_Json, default=list)
    model: Mapped[str] = mapped_column(String(255), default="")
    messages: Mapped[list[Any]] = mapped_column(_Json)
    response: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class MigrationRow(Base):
    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    to_island: Mapped[int] = mapped_column(Integer)
    iteration: Mapped[int] = mapped_column(Integer)


class RunLockRow(Base):
    """The controller of a campaign (`evolve.lock`): one row per running campaign, deleted when it stops."""

    __tablename__ = "run_locks"

    campaign: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64))
    run_dir: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[str] = mapped_column(String(32), default="")
    heartbeat: Mapped[float] = mapped_column(Float)  # the holder's time.time() at its last heartbeat


READ_ONLY_IGNORED = ("run_locks",)  # tables a reader never reads: an older database without them is fine


def make_engine(url: str, read_only: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, synchronous=NORMAL and a generous busy timeout.

    A writable engine creates missing tables and adds missing columns (an older evolve's database); a
    read-only one creates nothing, changes nothing, and refuses writes at the connection.
    """
    sqlite = url.startswith("sqlite")
    if sqlite and read_only:
        path = url.split(":///", 1)[1]
        # A reader of a WAL database needs its -wal and -shm files: a live campaign has them; of a closed
        # one, read the file as immutable rather than leave two new files beside it.
        quiet = "" if os.path.exists(f"{path}-wal") else "&immutable=1"
        engine = create_engine(f"sqlite:///file:{path}?mode=ro{quiet}&uri=true", connect_args={"timeout": 30})
    elif sqlite:
        engine = create_engine(url, connect_args={"timeout": 30})
    else:  # PostgreSQL: SQLAlchemy's psycopg dialect sets read-only on each connection
        options = {"postgresql_readonly": True} if read_only else {}
        engine = create_engine(url, pool_pre_ping=True, execution_options=options)

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

    if not read_only:
        Base.metadata.create_all(engine)
        _add_missing_columns(engine)
    return engine


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


def _add_missing_columns(engine: Engine) -> None:
    """Upgrade a database written by an older evolve: add the columns it lacks (additive changes only)."""
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                ddl = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {column.type.compile(engine.dialect)}"
                default = column.default.arg if column.default is not None and column.default.is_scalar else None
                if isinstance(default, (int, float)):
                    ddl += f" DEFAULT {default}"
                elif isinstance(default, str):
                    ddl += " DEFAULT '" + default.replace("'", "''") + "'"
                conn.execute(text(ddl))
