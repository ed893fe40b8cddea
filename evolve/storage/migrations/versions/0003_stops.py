"""How each invocation of a campaign ended: `stops`, one row per stop (finished, interrupted or failed, the
reason, when, and which controller), so `evolve status` can tell a finished campaign from an interrupted
or failed one after the fact. A database without this table is still read (read-only) as it is.

And what `evolve status` sums per model without reading `llm_calls` rows (their responses make them wide):
an index covering the tokens and cost, and two partial ones for the calls that failed (no response) and
those that did not.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


SPEND = ["campaign_id", "model", "prompt_tokens", "completion_tokens", "cost"]
BY_MODEL = ["campaign_id", "model", "id"]


def upgrade() -> None:
    op.create_index("ix_llm_calls_spend", "llm_calls", SPEND)
    failed, answered = sa.text("response IS NULL"), sa.text("response IS NOT NULL")
    op.create_index("ix_llm_calls_failed", "llm_calls", BY_MODEL, sqlite_where=failed, postgresql_where=failed)
    op.create_index("ix_llm_calls_answered", "llm_calls", BY_MODEL, sqlite_where=answered,
                    postgresql_where=answered)
    op.create_table("stops",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
                    sa.Column("state", sa.String(16), nullable=False),
                    sa.Column("reason", sa.Text, nullable=False),
                    sa.Column("at", sa.Float, nullable=False),
                    sa.Column("iterations", sa.Integer, nullable=False),
                    sa.Column("host", sa.String(255), nullable=False),
                    sa.Column("pid", sa.Integer, nullable=False))


def downgrade() -> None:
    op.drop_table("stops")
    for name in ("ix_llm_calls_answered", "ix_llm_calls_failed", "ix_llm_calls_spend"):
        op.drop_index(name, "llm_calls")
