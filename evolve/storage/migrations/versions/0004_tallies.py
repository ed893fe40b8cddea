"""`tallies`: a campaign's status figures up to a program id, kept by its controller every so many commits
and when it stops, so that `evolve status` reads only the rows committed since instead of every row. A
database without this table is still read (read-only): `evolve status` then counts every row.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tallies",
                    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), primary_key=True),
                    sa.Column("upto", sa.Integer, nullable=False),
                    sa.Column("at", sa.Float, nullable=False),
                    sa.Column("data", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False))


def downgrade() -> None:
    op.drop_table("tallies")
