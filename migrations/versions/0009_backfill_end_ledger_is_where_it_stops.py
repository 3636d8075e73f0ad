"""backfill_progress.end_ledger: where the last backfill stops, its --to or the lake's newest ledger when it
started; the comment said NULL stood for the lake's end, which a backfill never writes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "where the last backfill stops; NULL: where its lake ends"
AFTER = ("where the last backfill stops: its --to, else the lake's newest ledger when it started; NULL when the "
         "lake held no ledger then")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute(f'COMMENT ON COLUMN backfill_progress.end_ledger IS {_literal(AFTER)}')


def downgrade() -> None:
    op.execute(f'COMMENT ON COLUMN backfill_progress.end_ledger IS {_literal(BEFORE)}')
