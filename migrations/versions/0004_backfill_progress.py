"""Backfill progress: how far `flowfi backfill` has read a data lake, one row per set of indexed contracts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('backfill_progress',
    sa.Column('contract_ids', sa.Text(), nullable=False, comment='the indexed contract ids, sorted, comma-joined'),
    sa.Column('source', sa.Text(), nullable=False, comment='the data lake (or file) the last backfill read'),
    sa.Column('first_ledger', sa.BigInteger(), nullable=False, comment='the first ledger a backfill wrote'),
    sa.Column('end_ledger', sa.BigInteger(), nullable=True, comment='where the last backfill stops; NULL: where its lake ends'),
    sa.Column('last_ledger', sa.BigInteger(), nullable=False, comment='the last ledger written'),
    sa.Column('events_indexed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('contract_ids', name=op.f('pk_backfill_progress'))
    )


def downgrade() -> None:
    op.drop_table('backfill_progress')
