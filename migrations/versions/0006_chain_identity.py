"""Chain identity: the cursor keeps a ledger the index went through, with its hash and close time, so
that the worker tells a reset network, or another one, from a lagging node.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('indexer_cursor', sa.Column('anchor_ledger', sa.BigInteger(), nullable=True, comment="a ledger the index went through (the cursor's, or one up to a minute older); NULL: none yet"))
    op.add_column('indexer_cursor', sa.Column('anchor_hash', sa.Text(), nullable=True, comment="that ledger's hash (hex), as the RPC's getLedgers gave it"))
    op.add_column('indexer_cursor', sa.Column('anchor_closed_at', sa.DateTime(timezone=True), nullable=True, comment="that ledger's close time"))


def downgrade() -> None:
    op.drop_column('indexer_cursor', 'anchor_closed_at')
    op.drop_column('indexer_cursor', 'anchor_hash')
    op.drop_column('indexer_cursor', 'anchor_ledger')
