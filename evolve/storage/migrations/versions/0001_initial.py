"""The schema as evolve wrote it before Alembic: campaigns, programs, llm_calls, migrations, run_locks.

A database written before Alembic (no `alembic_version`) is completed to this revision by `complete`
(the additive upgrade: missing tables and columns) and stamped with it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _metadata() -> sa.MetaData:
    """The tables of this revision, frozen here (the models in `evolve.storage._orm` move on)."""
    meta = sa.MetaData()
    tz = sa.DateTime(timezone=True)
    sa.Table("campaigns", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(255), nullable=False, unique=True),
             sa.Column("problem", sa.String(255), nullable=False),
             sa.Column("config", _Json, nullable=False),
             sa.Column("created_at", tz, nullable=False))
    sa.Table("programs", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
             sa.Column("iteration", sa.Integer, nullable=False),
             sa.Column("status", sa.String(32), nullable=False),
             sa.Column("code", sa.Text, nullable=False),
             sa.Column("code_hash", sa.String(64), nullable=False),
             sa.Column("score", sa.Float, nullable=True),
             sa.Column("metrics", _Json, nullable=False),
             sa.Column("features", _Json, nullable=False),
             sa.Column("feedback", sa.Text, nullable=False),
             sa.Column("error", sa.Text, nullable=False),
             sa.Column("parent_id", sa.Integer, nullable=True),
             sa.Column("island", sa.Integer, nullable=False),
             sa.Column("generation", sa.Integer, nullable=False),
             sa.Column("proposer", sa.String(255), nullable=False),
             sa.Column("proposal", sa.Text, nullable=False),
             sa.Column("eval_seconds", sa.Float, nullable=True),
             sa.Column("propose_seconds", sa.Float, nullable=True),
             sa.Column("validation", _Json, nullable=True),
             sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
             sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
             sa.Column("cost", sa.Float, nullable=False, server_default="0"),
             sa.Column("choice", sa.Text, nullable=False, server_default=""),
             sa.Column("canonical_hash", sa.String(64), nullable=False, server_default=""),
             sa.Column("mode", sa.String(16), nullable=False, server_default=""),
             sa.Column("created_at", tz, nullable=False),
             sa.Index("ix_programs_campaign_status", "campaign_id", "status"),
             sa.Index("ix_programs_campaign_hash", "campaign_id", "code_hash"))
    sa.Table("llm_calls", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
             sa.Column("iteration", sa.Integer, nullable=False),
             sa.Column("parent_hash", sa.String(64), nullable=False),
             sa.Column("inspiration_hashes", _Json, nullable=False),
             sa.Column("model", sa.String(255), nullable=False),
             sa.Column("messages", _Json, nullable=False),
             sa.Column("response", sa.Text, nullable=True),
             sa.Column("error", sa.Text, nullable=False),
             sa.Column("prompt_tokens", sa.Integer, nullable=False),
             sa.Column("completion_tokens", sa.Integer, nullable=False),
             sa.Column("cost", sa.Float, nullable=False),
             sa.Column("seconds", sa.Float, nullable=False),
             sa.Column("created_at", tz, nullable=False),
             sa.Index("ix_llm_calls_campaign_iteration", "campaign_id", "iteration"))
    sa.Table("migrations", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
             sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
             sa.Column("to_island", sa.Integer, nullable=False),
             sa.Column("iteration", sa.Integer, nullable=False))
    sa.Table("run_locks", meta,
             sa.Column("campaign", sa.String(255), primary_key=True),
             sa.Column("host", sa.String(255), nullable=False),
             sa.Column("pid", sa.Integer, nullable=False),
             sa.Column("token", sa.String(64), nullable=False),
             sa.Column("run_dir", sa.Text, nullable=False),
             sa.Column("since", sa.String(32), nullable=False),
             sa.Column("heartbeat", sa.Float, nullable=False))
    return meta


def upgrade() -> None:
    _metadata().create_all(op.get_bind())


def downgrade() -> None:
    _metadata().drop_all(op.get_bind())


def complete(conn: sa.Connection) -> None:
    """Add the tables and columns an evolve before Alembic may lack (additive: nothing is rewritten)."""
    meta = _metadata()
    inspector = sa.inspect(conn)
    present_tables = set(inspector.get_table_names())
    meta.create_all(conn, tables=[t for t in meta.sorted_tables if t.name not in present_tables])
    for table in meta.sorted_tables:
        if table.name not in present_tables:
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"
            if column.server_default is not None:
                ddl += " DEFAULT " + (column.server_default.arg or "''")
            conn.execute(sa.text(ddl))
