"""dead_letters hold the events that could not be decoded (their comments said "or applied", which sends
none there); contract_upgrades.build is dropped: the chain does not name a build, no code wrote it, and
it was NULL in every row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = {
    "TABLE dead_letters": "events kept raw because they could not be decoded or applied; `flowfi redecode` tries "
                          "them again",
    "COLUMN dead_letters.event_id": "the contract_events row that could not be decoded or applied",
}
AFTER = {
    "TABLE dead_letters": "events kept raw because they could not be decoded as an event this indexer knows; "
                          "`flowfi redecode` tries them again",
    "COLUMN dead_letters.event_id": "the contract_events row that could not be decoded",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    for target, comment in AFTER.items():
        op.execute(f'COMMENT ON {target} IS {_literal(comment)}')
    op.drop_column('contract_upgrades', 'build')


def downgrade() -> None:
    op.add_column('contract_upgrades', sa.Column(
        'build', sa.Text(), nullable=True, comment='the contract build this code is known to be; NULL when unknown'))
    for target, comment in BEFORE.items():
        op.execute(f'COMMENT ON {target} IS {_literal(comment)}')
