"""The views' now (stream_balances.as_of, and claimableNow in the API) is the ledger time the index is at:
indexer_cursor.last_ledger_closed_at, new. It was the chain's newest ledger's close time, which while the
worker catches up is later than the state indexed: a stream cancelled in a ledger not yet indexed showed
as active and claimable there. Filled for existing cursors from what they hold: the later of the chain's
newest close time where the index has caught up and the close time of the newest event indexed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMN_COMMENT = (
    "the ledger time the index is at, which the views and claimableNow call now: the chain's newest close time "
    "once the worker has caught up; while it catches up, that of the newest event indexed (of last_ledger or "
    "before, or of the ledger after it, which a page may end within), never that of a ledger not indexed at all. "
    "It never goes back; NULL until known")
BEFORE = {
    "COLUMN indexer_cursor.latest_ledger_closed_at":
        "latest_ledger's close time: the ledger time the views call now; NULL until known",
    "COLUMN stream_balances.as_of":
        "the ledger time that claimable and locked are computed at: the newest ledger close time the indexer has "
        "seen for the contract (indexer_cursor.latest_ledger_closed_at), or the stream's last update if later",
}
AFTER = {
    "COLUMN indexer_cursor.latest_ledger_closed_at": "latest_ledger's close time; NULL until known",
    "COLUMN stream_balances.as_of":
        "the ledger time that claimable and locked are computed at: the ledger time the index of the stream's "
        "contract is at (indexer_cursor.last_ledger_closed_at), or the stream's last update if later",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _stream_balances_reading(old: str, new: str) -> None:
    """stream_balances as defined, reading the cursor's column `new` where it read `old` (positions, built
    on it, follows)."""
    definition = op.get_bind().execute(sa.text("SELECT pg_get_viewdef('stream_balances'::regclass)")).scalar_one()
    assert f"c.{old}" in definition
    op.execute(f"CREATE OR REPLACE VIEW stream_balances AS {definition.replace(f'c.{old}', f'c.{new}')}")


def upgrade() -> None:
    op.add_column('indexer_cursor', sa.Column('last_ledger_closed_at', sa.DateTime(timezone=True), nullable=True,
                                              comment=COLUMN_COMMENT))
    op.execute("""
        UPDATE indexer_cursor c SET last_ledger_closed_at = greatest(
            CASE WHEN c.last_ledger >= c.latest_ledger THEN c.latest_ledger_closed_at END,
            (SELECT max(e.ledger_closed_at) FROM contract_events e
             WHERE e.contract_id = ANY (string_to_array(c.contract_ids, ','))))
    """)
    _stream_balances_reading('latest_ledger_closed_at', 'last_ledger_closed_at')
    for target, comment in AFTER.items():
        op.execute(f'COMMENT ON {target} IS {_literal(comment)}')


def downgrade() -> None:
    _stream_balances_reading('last_ledger_closed_at', 'latest_ledger_closed_at')
    op.drop_column('indexer_cursor', 'last_ledger_closed_at')
    for target, comment in BEFORE.items():
        op.execute(f'COMMENT ON {target} IS {_literal(comment)}')
