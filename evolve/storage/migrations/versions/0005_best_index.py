"""The best valid programs in order by an index walk: (campaign, status, score descending, id), so that `evolve
best` and the report's top programs read a few index entries instead of sorting every valid program.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_programs_campaign_status_score", "programs",
                    ["campaign_id", "status", sa.text("score DESC"), "id"])


def downgrade() -> None:
    op.drop_index("ix_programs_campaign_status_score", "programs")
