"""streams.terms_source: 'unavailable' also when the stored entry is in a layout the indexer does not know,
and `flowfi redecode --storage` reads such schedules again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("events; storage when part of the schedule came from the contract's storage; unavailable when it "
          "should have and the entry was gone")
AFTER = ("events; storage when part of the schedule came from the contract's storage; unavailable when it "
         "should have and the entry was gone or in a layout the indexer did not know (flowfi redecode --storage "
         "reads it again)")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute(f'COMMENT ON COLUMN streams.terms_source IS {_literal(AFTER)}')


def downgrade() -> None:
    op.execute(f'COMMENT ON COLUMN streams.terms_source IS {_literal(BEFORE)}')
