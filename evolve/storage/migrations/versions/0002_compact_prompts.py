"""What reopening and `evolve status` need at scale: `programs.code_length` (filled in for old rows), an index
that reads a campaign in id order (on SQLite it covers every small column, so the rebuild never reads a
row's code), and prompts stored compactly: `llm_messages` holds each call's messages as zlib-compressed JSON
(new `llm_calls` rows keep `messages` empty), so `llm_calls` stays small to scan.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# Every column of `programs` but the large ones (code, metrics, features' neighbours feedback, proposal,
# validation, choice): the rebuild and `evolve status` read only these, in id order.
COVERED = ["campaign_id", "id", "iteration", "status", "score", "island", "parent_id", "cost", "code_length",
           "generation", "mode", "created_at", "proposer", "code_hash", "canonical_hash", "features", "error"]


def upgrade() -> None:
    op.add_column("programs", sa.Column("code_length", sa.Integer, nullable=True))
    op.execute("UPDATE programs SET code_length = length(code)")
    # PostgreSQL keeps code out of line (TOAST), so its rows are small already, and a wide btree entry
    # could pass its size limit: there the index only orders.
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_index("ix_programs_campaign_id", "programs", COVERED if sqlite else ["campaign_id", "id"])
    op.create_table("llm_messages",
                    sa.Column("call_id", sa.Integer, sa.ForeignKey("llm_calls.id"), primary_key=True),
                    sa.Column("data", sa.LargeBinary, nullable=False))


def downgrade() -> None:
    op.drop_table("llm_messages")
    op.drop_index("ix_programs_campaign_id", "programs")
    op.drop_column("programs", "code_length")
