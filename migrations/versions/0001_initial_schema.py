"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 10:00:58.478898
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contract_events',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('ledger', sa.BigInteger(), nullable=False),
    sa.Column('ledger_closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tx_hash', sa.Text(), nullable=False),
    sa.Column('contract_id', sa.Text(), nullable=False),
    sa.Column('topic_xdr', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('value_xdr', sa.Text(), nullable=False),
    sa.Column('topic', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='decoded topic; NULL when the XDR does not parse'),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='decoded value; NULL when the XDR does not parse'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_events'))
    )
    op.create_index(op.f('ix_contract_events_ledger'), 'contract_events', ['ledger'], unique=False)
    op.create_table('event_parties',
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('address', 'event_id', name=op.f('pk_event_parties'))
    )
    op.create_table('events',
    sa.Column('id', sa.Text(), nullable=False, comment='the contract_events id'),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('ledger', sa.BigInteger(), nullable=False),
    sa.Column('ledger_closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tx_hash', sa.Text(), nullable=False),
    sa.Column('contract_id', sa.Text(), nullable=False),
    sa.Column('stream_id', sa.Numeric(precision=20, scale=0), nullable=True),
    sa.Column('sender', sa.Text(), nullable=True),
    sa.Column('recipient', sa.Text(), nullable=True),
    sa.Column('rate_per_second', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('token_address', sa.Text(), nullable=True),
    sa.Column('deposited_amount', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('start_time', sa.Numeric(precision=20, scale=0), nullable=True),
    sa.Column('amount', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('new_deposited_amount', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('new_end_time', sa.Numeric(precision=20, scale=0), nullable=True),
    sa.Column('timestamp', sa.Numeric(precision=20, scale=0), nullable=True),
    sa.Column('total_withdrawn', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('amount_withdrawn', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('refunded_amount', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('paused_at', sa.Numeric(precision=20, scale=0), nullable=True),
    sa.Column('treasury', sa.Text(), nullable=True),
    sa.Column('fee_amount', sa.Numeric(precision=39, scale=0), nullable=True),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('admin', sa.Text(), nullable=True),
    sa.Column('fee_rate_bps', sa.BigInteger(), nullable=True),
    sa.Column('old_treasury', sa.Text(), nullable=True),
    sa.Column('new_treasury', sa.Text(), nullable=True),
    sa.Column('old_fee_rate_bps', sa.BigInteger(), nullable=True),
    sa.Column('new_fee_rate_bps', sa.BigInteger(), nullable=True),
    sa.Column('previous_admin', sa.Text(), nullable=True),
    sa.Column('new_admin', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    op.create_index(op.f('ix_events_kind_id'), 'events', ['kind', 'id'], unique=False)
    op.create_index(op.f('ix_events_ledger'), 'events', ['ledger'], unique=False)
    op.create_index(op.f('ix_events_ledger_closed_at'), 'events', ['ledger_closed_at'], unique=False)
    op.create_index(op.f('ix_events_stream_id_id'), 'events', ['stream_id', 'id'], unique=False)
    op.create_table('indexer_cursor',
    sa.Column('contract_ids', sa.Text(), nullable=False, comment='the indexed contract ids, sorted, comma-joined'),
    sa.Column('rpc_cursor', sa.Text(), nullable=False, comment='the getEvents cursor to resume from'),
    sa.Column('last_event_id', sa.Text(), nullable=True),
    sa.Column('last_ledger', sa.BigInteger(), nullable=False, comment='the last ledger fully indexed'),
    sa.Column('latest_ledger', sa.BigInteger(), nullable=False, comment="the RPC's newest ledger at that poll"),
    sa.Column('latest_ledger_closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('events_indexed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('contract_ids', name=op.f('pk_indexer_cursor'))
    )
    op.create_table('protocol_config',
    sa.Column('contract_id', sa.Text(), nullable=False),
    sa.Column('admin', sa.Text(), nullable=False),
    sa.Column('treasury', sa.Text(), nullable=False),
    sa.Column('fee_rate_bps', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, comment='ledger close time'),
    sa.Column('last_event_id', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('contract_id', name=op.f('pk_protocol_config'))
    )
    op.create_table('streams',
    sa.Column('contract_id', sa.Text(), nullable=False),
    sa.Column('stream_id', sa.Numeric(precision=20, scale=0), nullable=False),
    sa.Column('sender', sa.Text(), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('rate_per_second', sa.Numeric(precision=39, scale=0), nullable=False),
    sa.Column('deposited', sa.Numeric(precision=39, scale=0), nullable=False, comment='net of fees'),
    sa.Column('withdrawn', sa.Numeric(precision=39, scale=0), nullable=False),
    sa.Column('refunded', sa.Numeric(precision=39, scale=0), nullable=False),
    sa.Column('fees_paid', sa.Numeric(precision=39, scale=0), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('start_time', sa.Numeric(precision=20, scale=0), nullable=False, comment='ledger time, unix seconds'),
    sa.Column('last_update_time', sa.Numeric(precision=20, scale=0), nullable=False, comment='accrual runs from here'),
    sa.Column('paused_at', sa.Numeric(precision=20, scale=0), nullable=True, comment='set while paused'),
    sa.Column('end_time', sa.Numeric(precision=20, scale=0), nullable=True, comment='derived; NULL while paused'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, comment='ledger close time'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, comment='ledger close time'),
    sa.Column('first_event_id', sa.Text(), nullable=False),
    sa.Column('last_event_id', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('active', 'paused', 'cancelled', 'completed')", name=op.f('ck_streams_status')),
    sa.PrimaryKeyConstraint('contract_id', 'stream_id', name=op.f('pk_streams'))
    )
    op.create_index(op.f('ix_streams_recipient_stream_id'), 'streams', ['recipient', 'stream_id'], unique=False)
    op.create_index(op.f('ix_streams_sender_stream_id'), 'streams', ['sender', 'stream_id'], unique=False)
    op.create_index(op.f('ix_streams_status_stream_id'), 'streams', ['status', 'stream_id'], unique=False)
    op.create_index(op.f('ix_streams_stream_id'), 'streams', ['stream_id'], unique=False)
    op.create_index(op.f('ix_streams_token_stream_id'), 'streams', ['token', 'stream_id'], unique=False)
    op.create_table('dead_letters',
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['contract_events.id'], name=op.f('fk_dead_letters_event_id')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_dead_letters'))
    )


def downgrade() -> None:
    op.drop_table('dead_letters')
    op.drop_index(op.f('ix_streams_token_stream_id'), table_name='streams')
    op.drop_index(op.f('ix_streams_stream_id'), table_name='streams')
    op.drop_index(op.f('ix_streams_status_stream_id'), table_name='streams')
    op.drop_index(op.f('ix_streams_sender_stream_id'), table_name='streams')
    op.drop_index(op.f('ix_streams_recipient_stream_id'), table_name='streams')
    op.drop_table('streams')
    op.drop_table('protocol_config')
    op.drop_table('indexer_cursor')
    op.drop_index(op.f('ix_events_stream_id_id'), table_name='events')
    op.drop_index(op.f('ix_events_ledger_closed_at'), table_name='events')
    op.drop_index(op.f('ix_events_ledger'), table_name='events')
    op.drop_index(op.f('ix_events_kind_id'), table_name='events')
    op.drop_table('events')
    op.drop_table('event_parties')
    op.drop_index(op.f('ix_contract_events_ledger'), table_name='contract_events')
    op.drop_table('contract_events')
