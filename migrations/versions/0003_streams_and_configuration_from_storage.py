"""Streams and the protocol's configuration taken from the contract's storage (flowfi bootstrap) rather than
from their events: such a stream records the ledger it was read at, and has no first event.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column('protocol_config', 'last_event_id',
               existing_type=sa.TEXT(),
               nullable=True,
               comment="NULL when read from the contract's storage (flowfi bootstrap)")
    op.add_column('streams', sa.Column('bootstrap_ledger', sa.BigInteger(), nullable=True, comment="set when the index took this stream from the contract's storage at that ledger (flowfi bootstrap) rather than from its creation event"))
    op.alter_column('streams', 'created_at',
               existing_type=postgresql.TIMESTAMP(timezone=True),
               comment='ledger close time of the creation (of start_time, for a stream taken from storage)',
               existing_comment='ledger close time',
               existing_nullable=False)
    op.alter_column('streams', 'first_event_id',
               existing_type=sa.TEXT(),
               nullable=True,
               comment='NULL for a stream taken from storage')
    op.alter_column('streams', 'last_event_id',
               existing_type=sa.TEXT(),
               nullable=True,
               comment='NULL for a stream taken from storage and unchanged since')


def downgrade() -> None:
    op.execute("DELETE FROM streams WHERE first_event_id IS NULL OR last_event_id IS NULL")
    op.execute("DELETE FROM protocol_config WHERE last_event_id IS NULL")
    op.alter_column('streams', 'last_event_id',
               existing_type=sa.TEXT(),
               nullable=False,
               comment=None,
               existing_comment='NULL for a stream taken from storage and unchanged since')
    op.alter_column('streams', 'first_event_id',
               existing_type=sa.TEXT(),
               nullable=False,
               comment=None,
               existing_comment='NULL for a stream taken from storage')
    op.alter_column('streams', 'created_at',
               existing_type=postgresql.TIMESTAMP(timezone=True),
               comment='ledger close time',
               existing_comment='ledger close time of the creation (of start_time, for a stream taken from storage)',
               existing_nullable=False)
    op.drop_column('streams', 'bootstrap_ledger')
    op.alter_column('protocol_config', 'last_event_id',
               existing_type=sa.TEXT(),
               nullable=False,
               comment=None,
               existing_comment="NULL when read from the contract's storage (flowfi bootstrap)")
