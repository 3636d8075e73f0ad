"""The event tables' ledger and close-time indexes become BRIN: those columns grow with the event id, so
a block range's least and greatest value find a range of ledgers or times, without a B-tree entry per
event on every write.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ('ix_contract_events_ledger', 'contract_events', 'ledger'),
    ('ix_events_ledger', 'events', 'ledger'),
    ('ix_events_ledger_closed_at', 'events', 'ledger_closed_at'),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column], postgresql_using='brin',
                        postgresql_with={'pages_per_range': 32, 'autosummarize': 'on'})


def downgrade() -> None:
    for name, table, column in INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column])
