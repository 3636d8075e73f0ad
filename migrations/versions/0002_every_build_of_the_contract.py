"""Every build of the contract: its 14 later events' columns, stream schedules, closing, the protocol's pause,
guardian and code, and the table of code upgrades and data migrations.

Streams indexed before this revision are linear streams read from their events, which is what every stream
of build 8723543 is; `flowfi redecode` recomputes them under the new rules (their end time now follows the
contract's own projection).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contract_upgrades',
    sa.Column('event_id', sa.Text(), nullable=False, comment='the contract_upgraded or state_migrated event'),
    sa.Column('contract_id', sa.Text(), nullable=False),
    sa.Column('ledger', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False, comment='code (contract_upgraded) or data (state_migrated)'),
    sa.Column('wasm_hash', sa.Text(), nullable=True, comment="code: the new code's hash (hex)"),
    sa.Column('data_version', sa.BigInteger(), nullable=True, comment='data: the new storage layout version'),
    sa.Column('build', sa.Text(), nullable=True, comment='the contract build this code is known to be; NULL when unknown'),
    sa.CheckConstraint("kind IN ('code', 'data')", name=op.f('ck_contract_upgrades_kind')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_contract_upgrades'))
    )
    op.create_index(op.f('ix_contract_upgrades_contract_id_event_id'), 'contract_upgrades', ['contract_id', 'event_id'], unique=False)
    op.add_column('events', sa.Column('old_recipient', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('new_recipient', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('settled_amount', sa.Numeric(precision=39, scale=0), nullable=True))
    op.add_column('events', sa.Column('step_count', sa.BigInteger(), nullable=True))
    op.add_column('events', sa.Column('last_unlock_time', sa.Numeric(precision=20, scale=0), nullable=True))
    op.add_column('events', sa.Column('cliff_time', sa.Numeric(precision=20, scale=0), nullable=True))
    op.add_column('events', sa.Column('cliff_unlock_amount', sa.Numeric(precision=39, scale=0), nullable=True))
    op.add_column('events', sa.Column('milestone_id', sa.BigInteger(), nullable=True))
    op.add_column('events', sa.Column('caller', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('old_rate_per_second', sa.Numeric(precision=39, scale=0), nullable=True))
    op.add_column('events', sa.Column('new_rate_per_second', sa.Numeric(precision=39, scale=0), nullable=True))
    op.add_column('events', sa.Column('arbiter', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('approved', sa.Boolean(), nullable=True))
    op.add_column('events', sa.Column('closer', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('paused', sa.Boolean(), nullable=True))
    op.add_column('events', sa.Column('is_paused', sa.Boolean(), nullable=True))
    op.add_column('events', sa.Column('guardian', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('old_wasm_hash', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('new_wasm_hash', sa.Text(), nullable=True))
    op.add_column('events', sa.Column('old_version', sa.BigInteger(), nullable=True))
    op.add_column('events', sa.Column('new_version', sa.BigInteger(), nullable=True))
    op.alter_column('indexer_cursor', 'rpc_cursor',
               existing_type=sa.TEXT(),
               comment='the getEvents cursor to resume from; empty to start again at the configured ledger',
               existing_comment='the getEvents cursor to resume from',
               existing_nullable=False)
    op.add_column('protocol_config', sa.Column('is_paused', sa.Boolean(), nullable=True, comment='the protocol circuit breaker; NULL until a pause event is seen'))
    op.add_column('protocol_config', sa.Column('emergency_guardian', sa.Text(), nullable=True, comment='may pause the protocol besides the admin'))
    op.add_column('protocol_config', sa.Column('wasm_hash', sa.Text(), nullable=True, comment='the code the last contract_upgraded installed (hex)'))
    op.add_column('protocol_config', sa.Column('data_version', sa.BigInteger(), nullable=True, comment='the storage layout version of the last state_migrated'))
    op.alter_column('protocol_config', 'admin',
               existing_type=sa.TEXT(),
               nullable=True,
               comment='NULL until initialized or admin_transferred is seen')
    op.alter_column('protocol_config', 'treasury',
               existing_type=sa.TEXT(),
               nullable=True,
               comment='NULL until initialized or fee_config_updated is seen')
    op.alter_column('protocol_config', 'fee_rate_bps',
               existing_type=sa.BIGINT(),
               nullable=True,
               comment='NULL until initialized or fee_config_updated is seen')
    # existing rows are linear streams read from their events; the defaults fill them, then go
    for name, column, default in (
        ("schedule", sa.Column('schedule', sa.Text(), nullable=False, comment='linear, steps or hybrid (see indexer/accrual.py)'), "linear"),
        ("cliff_time", sa.Column('cliff_time', sa.Numeric(precision=20, scale=0), nullable=True, comment='nothing is claimable before it; hybrid streams unlock cliff_amount then'), None),
        ("cliff_amount", sa.Column('cliff_amount', sa.Numeric(precision=39, scale=0), nullable=True, comment="a hybrid stream's lump at cliff_time"), None),
        ("step_times", sa.Column('step_times', sa.ARRAY(sa.Numeric(precision=20, scale=0)), nullable=False, comment="a steps stream's unlock times, in the contract's order (2^64-1: milestone not met)"), "{}"),
        ("step_amounts", sa.Column('step_amounts', sa.ARRAY(sa.Numeric(precision=39, scale=0)), nullable=False, comment='the amount each step unlocks'), "{}"),
        ("conditional", sa.Column('conditional', sa.Boolean(), nullable=False, comment='steps that unlock when milestones are met'), "false"),
        ("allowance", sa.Column('allowance', sa.Boolean(), nullable=False, comment='created with no deposit; funded by top-ups only'), "false"),
        ("terms_source", sa.Column('terms_source', sa.Text(), nullable=False, comment="events; storage when part of the schedule came from the contract's storage; unavailable when it should have and the entry was gone"), "events"),
        ("dispute", sa.Column('dispute', sa.Text(), nullable=True, comment='requested, approved or rejected'), None),
    ):
        if default is not None:
            column.server_default = sa.text(f"'{default}'")
        op.add_column('streams', column)
        if default is not None:
            op.alter_column('streams', name, server_default=None)
    op.drop_constraint(op.f('ck_streams_status'), 'streams', type_='check')
    op.create_check_constraint(op.f('ck_streams_status'), 'streams', "status IN ('active', 'paused', 'cancelled', 'completed', 'closed')")
    op.create_check_constraint(op.f('ck_streams_schedule'), 'streams', "schedule IN ('linear', 'steps', 'hybrid')")
    op.create_check_constraint(op.f('ck_streams_terms_source'), 'streams', "terms_source IN ('events', 'storage', 'unavailable')")
    op.alter_column('streams', 'end_time',
               existing_type=sa.NUMERIC(precision=20, scale=0),
               comment="when the deposit runs out, as the contract projects it at the stream's last event; while paused, if resumed then; NULL while a milestone is unmet",
               existing_comment='derived; NULL while paused',
               existing_nullable=True)


def downgrade() -> None:
    op.drop_constraint(op.f('ck_streams_terms_source'), 'streams', type_='check')
    op.drop_constraint(op.f('ck_streams_schedule'), 'streams', type_='check')
    op.execute("DELETE FROM streams WHERE status = 'closed'")
    op.drop_constraint(op.f('ck_streams_status'), 'streams', type_='check')
    op.create_check_constraint(op.f('ck_streams_status'), 'streams', "status IN ('active', 'paused', 'cancelled', 'completed')")
    op.alter_column('streams', 'end_time',
               existing_type=sa.NUMERIC(precision=20, scale=0),
               comment='derived; NULL while paused',
               existing_comment="when the deposit runs out, as the contract projects it at the stream's last event; while paused, if resumed then; NULL while a milestone is unmet",
               existing_nullable=True)
    op.drop_column('streams', 'dispute')
    op.drop_column('streams', 'terms_source')
    op.drop_column('streams', 'allowance')
    op.drop_column('streams', 'conditional')
    op.drop_column('streams', 'step_amounts')
    op.drop_column('streams', 'step_times')
    op.drop_column('streams', 'cliff_amount')
    op.drop_column('streams', 'cliff_time')
    op.drop_column('streams', 'schedule')
    op.alter_column('protocol_config', 'fee_rate_bps',
               existing_type=sa.BIGINT(),
               nullable=False,
               comment=None,
               existing_comment='NULL until initialized or fee_config_updated is seen')
    op.alter_column('protocol_config', 'treasury',
               existing_type=sa.TEXT(),
               nullable=False,
               comment=None,
               existing_comment='NULL until initialized or fee_config_updated is seen')
    op.alter_column('protocol_config', 'admin',
               existing_type=sa.TEXT(),
               nullable=False,
               comment=None,
               existing_comment='NULL until initialized or admin_transferred is seen')
    op.drop_column('protocol_config', 'data_version')
    op.drop_column('protocol_config', 'wasm_hash')
    op.drop_column('protocol_config', 'emergency_guardian')
    op.drop_column('protocol_config', 'is_paused')
    op.alter_column('indexer_cursor', 'rpc_cursor',
               existing_type=sa.TEXT(),
               comment='the getEvents cursor to resume from',
               existing_comment='the getEvents cursor to resume from; empty to start again at the configured ledger',
               existing_nullable=False)
    op.drop_column('events', 'new_version')
    op.drop_column('events', 'old_version')
    op.drop_column('events', 'new_wasm_hash')
    op.drop_column('events', 'old_wasm_hash')
    op.drop_column('events', 'guardian')
    op.drop_column('events', 'is_paused')
    op.drop_column('events', 'paused')
    op.drop_column('events', 'closer')
    op.drop_column('events', 'approved')
    op.drop_column('events', 'arbiter')
    op.drop_column('events', 'new_rate_per_second')
    op.drop_column('events', 'old_rate_per_second')
    op.drop_column('events', 'caller')
    op.drop_column('events', 'milestone_id')
    op.drop_column('events', 'cliff_unlock_amount')
    op.drop_column('events', 'cliff_time')
    op.drop_column('events', 'last_unlock_time')
    op.drop_column('events', 'step_count')
    op.drop_column('events', 'settled_amount')
    op.drop_column('events', 'new_recipient')
    op.drop_column('events', 'old_recipient')
    op.drop_index(op.f('ix_contract_upgrades_contract_id_event_id'), table_name='contract_upgrades')
    op.drop_table('contract_upgrades')
