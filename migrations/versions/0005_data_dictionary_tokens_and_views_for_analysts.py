"""The data dictionary, token names and views for analysts.

Every table and column gets its meaning as a comment (the text indexer/tables.py gives it), and so do the
views below and alembic's own table: `docs/SCHEMA.md` is generated from these comments. `tokens` holds each
token's name, symbol and decimals (empty until they are read or entered).

The views answer the everyday questions in plain SQL, their amounts both raw (i128 in the token's smallest
unit) and human (`_human`: raw / 10^decimals, exact; NULL while the token's decimals are unknown):
    stream_balances  every stream with its token, and what is claimable and locked now
    daily_flows      per day (UTC) and token: deposited, withdrawn, refunded, fees
    positions        per address and token: what it streams out, streams in and can claim now
    protocol_fees    per token and treasury: the protocol's fees
"Now" is ledger time: the close time of the newest ledger the indexer has seen for the stream's contract
(indexer_cursor.latest_ledger_closed_at), never the server's clock. Claimable is the contract's formula
(calculate_claimable) for every schedule, as indexer/accrual.py states it.

The read-only role flowfi_reader is not created here but by every `flowfi migrate` (migrations/env.py), so
that it can be granted again once an administrator has created it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_COMMENTS = {
    'contract_events': 'every event of the indexed contract(s), as the RPC delivered it (XDR) and decoded (JSON), in chain order; one row per event, never changed',
    'contract_upgrades': "the contract's code changes and data migrations, in chain order",
    'event_parties': "which addresses each event concerns (a stream event's sender and recipient, the recipients a transfer names, every address of a protocol event): everything about an address, in chain order",
    'events': "the FlowFi events, typed: one row per decoded contract_events row, one column per contract field (NULL where the kind has no such field); see the README's table of events",
    'indexer_cursor': 'where the worker resumes, one row per set of indexed contracts, and how far the chain is',
    'protocol_config': "each contract's current configuration, from its protocol events (or its storage): one row per contract",
    'streams': "the state of every stream, derived from its events (and from the contract's storage where they do not carry its whole schedule); one row per stream, updated as its events arrive. See stream_balances for what is claimable and locked now",
    'dead_letters': 'events kept raw because they could not be decoded or applied; `flowfi redecode` tries them again',
    'backfill_progress': 'how far `flowfi backfill` has read a data lake, one row per set of indexed contracts',
}
COLUMN_COMMENTS = {  # (table, column): (comment, the comment before)
    ('contract_events', 'id'): ('the RPC event id, %019d-%010d: chain order when sorted as text; the key of every event table', None),
    ('contract_events', 'ledger'): ('the ledger (sequence number) holding the event', None),
    ('contract_events', 'ledger_closed_at'): ("the ledger's close time", None),
    ('contract_events', 'tx_hash'): ('the transaction that published the event (hex)', None),
    ('contract_events', 'contract_id'): ('the contract that published it (C... strkey)', None),
    ('contract_events', 'topic_xdr'): ('the topic: one base64 ScVal XDR per element', None),
    ('contract_events', 'value_xdr'): ('the data: base64 ScVal XDR', None),
    ('contract_upgrades', 'contract_id'): ('the contract (C... strkey)', None),
    ('contract_upgrades', 'ledger'): ('the ledger of the event: the new code runs from there', None),
    ('event_parties', 'address'): ('a G... or C... strkey', None),
    ('event_parties', 'event_id'): ('an events id that concerns the address', None),
    ('events', 'kind'): ("the event's kind, as the API and live events name it: stream.created, protocol.initialized, ...", None),
    ('events', 'ledger'): ('the ledger (sequence number) holding the event', None),
    ('events', 'ledger_closed_at'): ("the ledger's close time", None),
    ('events', 'tx_hash'): ('the transaction that published the event (hex)', None),
    ('events', 'contract_id'): ('the contract that published it (C... strkey)', None),
    ('events', 'stream_id'): ("u64, the contract's stream id. Set by every stream.* kind; NULL for other kinds", None),
    ('events', 'sender'): ("For stream events the stream's sender at that event, whichever kind (the event's own where the stream is unknown); NULL for protocol events. The event's field: address, a G... account or C... contract strkey. Set by stream.created, stream.topped_up?, stream.cancelled?, stream.paused?, stream.resumed?, stream.step_vesting_created, stream.hybrid_cliff_created, stream.allowance_created, stream.rate_modified?, stream.dispute_requested?; NULL for other kinds and where a ? kind leaves it out", None),
    ('events', 'recipient'): ("For stream events the stream's recipient at that event, whichever kind (the event's own where the stream is unknown); NULL for protocol events. The event's field: address, a G... account or C... contract strkey. Set by stream.created, stream.withdrawn?, stream.completed?, stream.cancelled?, stream.step_vesting_created, stream.hybrid_cliff_created, stream.allowance_created; NULL for other kinds and where a ? kind leaves it out", None),
    ('events', 'rate_per_second'): ("i128, the token's smallest unit per second. Set by stream.created, stream.hybrid_cliff_created, stream.allowance_created; NULL for other kinds", None),
    ('events', 'token_address'): ('address, a G... account or C... contract strkey. Set by stream.created, stream.step_vesting_created, stream.hybrid_cliff_created, stream.allowance_created; NULL for other kinds', None),
    ('events', 'deposited_amount'): ("i128, an amount in the token's smallest unit (net of the creation fee). Set by stream.created, stream.step_vesting_created, stream.hybrid_cliff_created; NULL for other kinds", None),
    ('events', 'start_time'): ('u64, unix seconds, ledger time. Set by stream.created, stream.allowance_created; NULL for other kinds', None),
    ('events', 'amount'): ("i128, an amount in the token's smallest unit (in stream.topped_up the deposit added, net of the fee; in stream.withdrawn what the recipient received; in stream.milestone_unlocked what the milestone unlocked). Set by stream.topped_up, stream.withdrawn, stream.milestone_unlocked; NULL for other kinds", None),
    ('events', 'new_deposited_amount'): ("i128, an amount in the token's smallest unit (the stream's whole deposit after the top-up, net of fees). Set by stream.topped_up?; NULL for other kinds and where a ? kind leaves it out", None),
    ('events', 'new_end_time'): ('u64, unix seconds, ledger time (when the deposit runs out, as the contract projects it). Set by stream.topped_up?, stream.resumed?, stream.rate_modified?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'timestamp'): ('u64, unix seconds, ledger time. Set by stream.withdrawn, stream.recipient_transferred, stream.milestone_unlocked, stream.rate_modified, stream.dispute_requested?, stream.dispute_resolved?, stream.closed?, protocol.pause_status?, protocol.contract_upgraded?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'total_withdrawn'): ("i128, an amount in the token's smallest unit (everything the recipient received from the stream). Set by stream.completed; NULL for other kinds", None),
    ('events', 'amount_withdrawn'): ("i128, an amount in the token's smallest unit (everything the recipient received, including what had accrued and was paid at the cancellation without a stream.withdrawn). Set by stream.cancelled; NULL for other kinds", None),
    ('events', 'refunded_amount'): ("i128, an amount in the token's smallest unit (returned to the sender at the cancellation). Set by stream.cancelled?; NULL for other kinds and where a ? kind leaves it out", None),
    ('events', 'paused_at'): ('u64, unix seconds, ledger time. Set by stream.paused; NULL for other kinds', None),
    ('events', 'treasury'): ('address, a G... account or C... contract strkey. Set by stream.fee_collected?, protocol.initialized; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'fee_amount'): ("i128, an amount in the token's smallest unit (the protocol's fee on a deposit or top-up, paid to the treasury). Set by stream.fee_collected; NULL for other kinds", None),
    ('events', 'token'): ('address, a G... account or C... contract strkey. Set by stream.fee_collected?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'admin'): ('address, a G... account or C... contract strkey. Set by protocol.initialized, protocol.fee_config_updated?, protocol.paused?, protocol.emergency_guardian_updated?, protocol.contract_upgraded?, protocol.state_migrated?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'fee_rate_bps'): ('u32, basis points (1/100 of a percent). Set by protocol.initialized; NULL for other kinds', None),
    ('events', 'old_treasury'): ('address, a G... account or C... contract strkey. Set by protocol.fee_config_updated?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'new_treasury'): ('address, a G... account or C... contract strkey. Set by protocol.fee_config_updated; NULL for other kinds', None),
    ('events', 'old_fee_rate_bps'): ('u32, basis points (1/100 of a percent). Set by protocol.fee_config_updated?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'new_fee_rate_bps'): ('u32, basis points (1/100 of a percent). Set by protocol.fee_config_updated; NULL for other kinds', None),
    ('events', 'previous_admin'): ('address, a G... account or C... contract strkey. Set by protocol.admin_transferred?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'new_admin'): ('address, a G... account or C... contract strkey. Set by protocol.admin_transferred; NULL for other kinds', None),
    ('events', 'old_recipient'): ('address, a G... account or C... contract strkey. Set by stream.recipient_transferred?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'new_recipient'): ('address, a G... account or C... contract strkey. Set by stream.recipient_transferred; NULL for other kinds', None),
    ('events', 'settled_amount'): ("i128, an amount in the token's smallest unit (what had accrued, paid to the old recipient (with no stream.withdrawn)). Set by stream.recipient_transferred; NULL for other kinds", None),
    ('events', 'step_count'): ('u32, a number. Set by stream.step_vesting_created?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'last_unlock_time'): ('u64, unix seconds, ledger time. Set by stream.step_vesting_created?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'cliff_time'): ('u64, unix seconds, ledger time. Set by stream.hybrid_cliff_created; NULL for other kinds', None),
    ('events', 'cliff_unlock_amount'): ("i128, an amount in the token's smallest unit. Set by stream.hybrid_cliff_created; NULL for other kinds", None),
    ('events', 'milestone_id'): ('u32, a number. Set by stream.milestone_unlocked; NULL for other kinds', None),
    ('events', 'caller'): ('address, a G... account or C... contract strkey. Set by stream.milestone_unlocked?, protocol.pause_status?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'old_rate_per_second'): ("i128, the token's smallest unit per second. Set by stream.rate_modified?; NULL for other kinds and where a ? kind leaves it out", None),
    ('events', 'new_rate_per_second'): ("i128, the token's smallest unit per second. Set by stream.rate_modified; NULL for other kinds", None),
    ('events', 'arbiter'): ('address, a G... account or C... contract strkey. Set by stream.dispute_requested?, stream.dispute_resolved?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'approved'): ('bool, true or false. Set by stream.dispute_resolved; NULL for other kinds', None),
    ('events', 'closer'): ('address, a G... account or C... contract strkey. Set by stream.closed?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'paused'): ('bool, true or false. Set by protocol.pause_status; NULL for other kinds', None),
    ('events', 'is_paused'): ('bool, true or false. Set by protocol.paused; NULL for other kinds', None),
    ('events', 'guardian'): ("Option<Address>, a G... or C... strkey; NULL for the contract's None. Set by protocol.emergency_guardian_updated; NULL for other kinds", None),
    ('events', 'old_wasm_hash'): ('BytesN<32>, 32 bytes as lowercase hex. Set by protocol.contract_upgraded?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'new_wasm_hash'): ('BytesN<32>, 32 bytes as lowercase hex. Set by protocol.contract_upgraded; NULL for other kinds', None),
    ('events', 'old_version'): ('u32, a number. Set by protocol.state_migrated?; NULL for other kinds and where a ? kind leaves it out', None),
    ('events', 'new_version'): ('u32, a number. Set by protocol.state_migrated; NULL for other kinds', None),
    ('indexer_cursor', 'last_event_id'): ('the last event indexed; NULL before the first', None),
    ('indexer_cursor', 'latest_ledger_closed_at'): ("latest_ledger's close time: the ledger time the views call now; NULL until known", None),
    ('indexer_cursor', 'events_indexed'): ('events written so far', None),
    ('indexer_cursor', 'updated_at'): ("when the worker last polled (the server's clock)", None),
    ('protocol_config', 'contract_id'): ('the contract (C... strkey)', None),
    ('protocol_config', 'fee_rate_bps'): ('u32, the fee in basis points of every deposit and top-up; NULL until initialized or fee_config_updated is seen', 'NULL until initialized or fee_config_updated is seen'),
    ('streams', 'contract_id'): ('the contract (C... strkey)', None),
    ('streams', 'stream_id'): ("u64, the contract's stream id", None),
    ('streams', 'sender'): ('who funds the stream (G... or C... strkey)', None),
    ('streams', 'recipient'): ('who receives it now (strkey); stream.recipient_transferred changes it', None),
    ('streams', 'token'): ('the token contract (C... strkey); see tokens', None),
    ('streams', 'rate_per_second'): ("i128, the token's smallest unit per second; 0 for steps schedules", None),
    ('streams', 'deposited'): ("i128, in the token's smallest unit: the creation's deposit plus the top-ups, net of fees", 'net of fees'),
    ('streams', 'withdrawn'): ("i128, in the token's smallest unit: what the recipients received: withdrawals, settlements of recipient transfers and the accrued payout at a cancellation", None),
    ('streams', 'refunded'): ("i128, in the token's smallest unit: returned to the sender at a cancellation", None),
    ('streams', 'fees_paid'): ("i128, in the token's smallest unit: protocol fees taken from the deposits (stream.fee_collected)", None),
    ('streams', 'status'): ('active, paused, cancelled, completed (withdrawn in full) or closed (storage deleted)', None),
    ('streams', 'start_time'): ('u64, unix seconds, ledger time', 'ledger time, unix seconds'),
    ('streams', 'last_update_time'): ('u64, unix seconds, ledger time: a linear stream accrues from here (withdrawals, resumes and rate changes move it)', 'accrual runs from here'),
    ('streams', 'paused_at'): ('u64, unix seconds, ledger time: set while paused, NULL otherwise', 'set while paused'),
    ('streams', 'end_time'): ("u64, unix seconds, ledger time: when the deposit runs out, as the contract projects it at the stream's last event; while paused, if resumed then; NULL while a milestone is unmet", "when the deposit runs out, as the contract projects it at the stream's last event; while paused, if resumed then; NULL while a milestone is unmet"),
    ('streams', 'schedule'): ('linear, steps or hybrid: how the deposit unlocks (see claimable in stream_balances)', 'linear, steps or hybrid (see indexer/accrual.py)'),
    ('streams', 'cliff_time'): ('u64, unix seconds, ledger time: nothing is claimable before it; hybrid streams unlock cliff_amount then; NULL: no cliff', 'nothing is claimable before it; hybrid streams unlock cliff_amount then'),
    ('streams', 'cliff_amount'): ("i128, in the token's smallest unit: a hybrid stream's lump at cliff_time; NULL for others", "a hybrid stream's lump at cliff_time"),
    ('streams', 'step_times'): ("u64, unix seconds, ledger time: a steps stream's unlock times, in the contract's order (2^64-1: milestone not met); empty for other schedules", "a steps stream's unlock times, in the contract's order (2^64-1: milestone not met)"),
    ('streams', 'step_amounts'): ("i128, in the token's smallest unit: what each of step_times unlocks", 'the amount each step unlocks'),
    ('streams', 'dispute'): ('requested, approved or rejected; NULL when none was requested', 'requested, approved or rejected'),
    ('dead_letters', 'event_id'): ('the contract_events row that could not be decoded or applied', None),
    ('dead_letters', 'reason'): ('what is wrong with it', None),
    ('dead_letters', 'recorded_at'): ("when the worker recorded it (the server's clock)", None),
    ('backfill_progress', 'events_indexed'): ('events written by the backfills of this row', None),
    ('backfill_progress', 'started_at'): ("when the first backfill of this row started (the server's clock)", None),
    ('backfill_progress', 'updated_at'): ("when the last batch was written (the server's clock)", None),
}

AMOUNT = "i128, in the token's smallest unit"
SUM = "a sum of i128 amounts, in the token's smallest unit"
HUMAN = "in whole tokens ({} / 10^decimals, exact); NULL while the token's decimals are unknown"
TOKEN = {
    'token': 'the token contract (C... strkey)',
    'symbol': "the token's symbol (tokens.symbol); NULL until known",
    'decimals': "the token's decimals (tokens.decimals); NULL until known",
}
NOW = "the ledger time that claimable and locked are computed at: the newest ledger close time the indexer has seen for the contract (indexer_cursor.latest_ledger_closed_at), or the stream's last update if later"

TOKEN_AMOUNT_COMMENT = "an amount in the token's smallest unit as whole tokens: amount / 10^decimals, exact (NUMERIC with decimals places); NULL when either is NULL or decimals is not within 0..255"

VIEW_COMMENTS = {
    'stream_balances': "every stream with its token's symbol and decimals, and what is claimable and locked now (ledger time, see as_of): the contract's calculate_claimable for every schedule. One row per row of streams",
    'daily_flows': "the tokens that moved through the streams each day (UTC, by ledger close time), per token: deposits, what recipients received, refunds and fees. Streams the index has no row of (created before the indexed history began) are left out; for a stream taken from storage (streams.bootstrap_ledger), what it paid before that ledger is counted at its cancellation",
    'positions': "per address and token, its open (active or paused) streams: what is still locked in those it sends and in those it receives, and what it can claim now (ledger time, see as_of)",
    'protocol_fees': "the protocol's fees (stream.fee_collected) per token and treasury",
}
VIEW_COLUMN_COMMENTS = {
    'stream_balances': {
        'contract_id': 'the contract (C... strkey)',
        'stream_id': "u64, the contract's stream id",
        'sender': 'who funds the stream (strkey)',
        'recipient': 'who receives it now (strkey)',
        **TOKEN,
        'status': 'active, paused, cancelled, completed or closed',
        'schedule': 'linear, steps or hybrid',
        'deposited': f"{AMOUNT}: the creation's deposit plus the top-ups, net of fees",
        'withdrawn': f"{AMOUNT}: what the recipients received",
        'refunded': f"{AMOUNT}: returned to the sender at a cancellation",
        'fees_paid': f"{AMOUNT}: protocol fees taken from the deposits",
        'claimable': f"{AMOUNT}: what the recipient could withdraw now; 0 once the stream is cancelled, completed or closed",
        'locked': f"{AMOUNT}: still in the contract and not yet claimable now (what a cancellation now would refund); 0 once finished",
        'remaining': f"{AMOUNT}: still in the contract now: claimable + locked; 0 once finished",
        **{f'{name}_human': HUMAN.format(name) for name in
           ('deposited', 'withdrawn', 'refunded', 'fees_paid', 'claimable', 'locked', 'remaining')},
        'rate_per_second': "i128, the token's smallest unit per second; 0 for steps schedules",
        'start_time': 'u64, unix seconds, ledger time',
        'end_time': 'u64, unix seconds, ledger time: when the deposit runs out, as the contract projects it (streams.end_time)',
        'created_at': 'ledger close time of the creation',
        'updated_at': "ledger close time of the stream's last event",
        'as_of': NOW,
    },
    'daily_flows': {
        'day': 'the UTC date of the ledgers',
        **TOKEN,
        'streams_created': 'streams created that day, by any creation kind',
        'deposited': f"{SUM}: creations' deposits and top-ups, net of fees",
        'withdrawn': f"{SUM}: what recipients received: withdrawals, settlements of recipient transfers, and what had accrued and was paid at cancellations",
        'refunded': f"{SUM}: returned to senders at cancellations",
        'fees': f"{SUM}: protocol fees (stream.fee_collected)",
        **{f'{name}_human': HUMAN.format(name) for name in ('deposited', 'withdrawn', 'refunded', 'fees')},
    },
    'positions': {
        'address': 'a G... or C... strkey: the sender or recipient of at least one open stream',
        **TOKEN,
        'streams_out': 'open streams the address sends',
        'streaming_out': f"{SUM}: still locked in the streams it sends (what cancelling them now would refund)",
        'streams_in': 'open streams the address receives',
        'streaming_in': f"{SUM}: still locked in the streams it receives (yet to become claimable)",
        'claimable': f"{SUM}: what it could withdraw now from the streams it receives",
        **{f'{name}_human': HUMAN.format(name) for name in ('streaming_out', 'streaming_in', 'claimable')},
        'as_of': 'the ledger time claimable and locked are computed at (see stream_balances.as_of)',
    },
    'protocol_fees': {
        **TOKEN,
        'token': "the token contract (C... strkey): the event's token, else its stream's; NULL when neither is known",
        'treasury': "who received the fees: the event's treasury, else the one configured at the time",
        'fee_events': 'stream.fee_collected events',
        'fees': f"{SUM}: the fees",
        'fees_human': HUMAN.format('fees'),
        'first_at': 'ledger close time of the first fee',
        'last_at': 'ledger close time of the last fee',
    },
}
ALEMBIC_COMMENTS = (
    "the schema's migration revision (alembic): `flowfi migrate` brings it to the newest",
    'the revision the schema is at',
)

FINISHED = "('cancelled', 'completed', 'closed')"
CREATIONS = "('stream.created', 'stream.step_vesting_created', 'stream.hybrid_cliff_created', 'stream.allowance_created')"

TOKEN_AMOUNT = """
CREATE FUNCTION token_amount(amount NUMERIC, decimals BIGINT) RETURNS NUMERIC
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT CASE WHEN decimals BETWEEN 0 AND 255 THEN round(amount * power(10::numeric, -decimals), decimals::integer) END $$
"""

STREAM_BALANCES = f"""
CREATE VIEW stream_balances AS
SELECT s.contract_id, s.stream_id, s.sender, s.recipient, s.token, t.symbol, t.decimals, s.status, s.schedule,
       s.deposited, s.withdrawn, s.refunded, s.fees_paid,
       a.claimable::numeric(39, 0) AS claimable,
       (r.remaining - a.claimable)::numeric(39, 0) AS locked,
       r.remaining::numeric(39, 0) AS remaining,
       token_amount(s.deposited, t.decimals) AS deposited_human,
       token_amount(s.withdrawn, t.decimals) AS withdrawn_human,
       token_amount(s.refunded, t.decimals) AS refunded_human,
       token_amount(s.fees_paid, t.decimals) AS fees_paid_human,
       token_amount(a.claimable, t.decimals) AS claimable_human,
       token_amount(r.remaining - a.claimable, t.decimals) AS locked_human,
       token_amount(r.remaining, t.decimals) AS remaining_human,
       s.rate_per_second, s.start_time, s.end_time, s.created_at, s.updated_at, n.as_of
FROM streams s
LEFT JOIN tokens t ON t.address = s.token
CROSS JOIN LATERAL (
    SELECT greatest(s.updated_at, (SELECT max(c.latest_ledger_closed_at) FROM indexer_cursor c
                                   WHERE s.contract_id = ANY (string_to_array(c.contract_ids, ',')))) AS as_of
) n
CROSS JOIN LATERAL (
    -- calculate_claimable: frozen at paused_at while paused; what is left is the ceiling
    SELECT coalesce(s.paused_at, floor(extract(epoch FROM n.as_of))::numeric) AS effective,
           CASE WHEN s.status IN {FINISHED} THEN 0 ELSE greatest(s.deposited - s.withdrawn, 0) END AS remaining
) r
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN s.status IN {FINISHED} THEN 0
        WHEN s.cliff_time IS NOT NULL AND r.effective < s.cliff_time THEN 0
        -- steps: the unlocked steps up to the first one still locked, whatever comes after it
        WHEN s.schedule = 'steps' THEN least(greatest((
            SELECT coalesce(sum(step.amount), 0) FROM (
                SELECT u.amount, bool_and(u.time <= r.effective) OVER (ORDER BY u.n) AS reached
                FROM unnest(s.step_times, s.step_amounts) WITH ORDINALITY AS u(time, amount, n)
            ) step WHERE step.reached) - s.withdrawn, 0), r.remaining)
        -- hybrid: the lump at the cliff, then the rest at the rate from the cliff
        WHEN s.schedule = 'hybrid' THEN least(greatest(
            coalesce(s.cliff_amount, 0)
            + least((r.effective - s.cliff_time) * s.rate_per_second, greatest(s.deposited - coalesce(s.cliff_amount, 0), 0))
            - s.withdrawn, 0), r.remaining)
        -- linear: the rate from the last update
        ELSE least(greatest(r.effective - s.last_update_time, 0) * s.rate_per_second, r.remaining)
    END AS claimable
) a
"""

# Every token movement of a stream, by event: deposits (net of fees), what the recipients received
# (withdrawals, recipient-transfer settlements, and at a cancellation what had accrued: its cumulative
# amount_withdrawn less what the stream's earlier events paid), refunds and fees.
DAILY_FLOWS = f"""
CREATE VIEW daily_flows AS
WITH moves AS (
    SELECT e.ledger_closed_at, s.token, e.kind,
           CASE WHEN e.kind IN {CREATIONS} THEN e.deposited_amount
                WHEN e.kind = 'stream.topped_up' THEN e.amount END AS deposited,
           CASE e.kind WHEN 'stream.withdrawn' THEN e.amount
                       WHEN 'stream.recipient_transferred' THEN e.settled_amount
                       WHEN 'stream.cancelled' THEN e.amount_withdrawn - coalesce(sum(
                           CASE e.kind WHEN 'stream.withdrawn' THEN e.amount
                                       WHEN 'stream.recipient_transferred' THEN e.settled_amount END) OVER earlier, 0)
           END AS withdrawn,
           CASE WHEN e.kind = 'stream.cancelled' THEN coalesce(e.refunded_amount, greatest(coalesce(sum(
               CASE WHEN e.kind IN {CREATIONS} THEN e.deposited_amount
                    WHEN e.kind = 'stream.topped_up' THEN e.amount END) OVER earlier, 0) - e.amount_withdrawn, 0))
           END AS refunded,
           CASE WHEN e.kind = 'stream.fee_collected' THEN e.fee_amount END AS fees
    FROM events e
    JOIN streams s ON s.contract_id = e.contract_id AND s.stream_id = e.stream_id
    WHERE e.kind IN ('stream.created', 'stream.step_vesting_created', 'stream.hybrid_cliff_created',
                     'stream.allowance_created', 'stream.topped_up', 'stream.withdrawn',
                     'stream.recipient_transferred', 'stream.cancelled', 'stream.fee_collected')
    WINDOW earlier AS (PARTITION BY e.contract_id, e.stream_id ORDER BY e.id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT d.day, d.token, t.symbol, t.decimals, d.streams_created, d.deposited, d.withdrawn, d.refunded, d.fees,
       token_amount(d.deposited, t.decimals) AS deposited_human,
       token_amount(d.withdrawn, t.decimals) AS withdrawn_human,
       token_amount(d.refunded, t.decimals) AS refunded_human,
       token_amount(d.fees, t.decimals) AS fees_human
FROM (
    SELECT (m.ledger_closed_at AT TIME ZONE 'UTC')::date AS day, m.token,
           count(*) FILTER (WHERE m.kind IN {CREATIONS}) AS streams_created,
           coalesce(sum(m.deposited), 0)::numeric(76, 0) AS deposited,
           coalesce(sum(m.withdrawn), 0)::numeric(76, 0) AS withdrawn,
           coalesce(sum(m.refunded), 0)::numeric(76, 0) AS refunded,
           coalesce(sum(m.fees), 0)::numeric(76, 0) AS fees
    FROM moves m
    GROUP BY 1, 2
) d
LEFT JOIN tokens t ON t.address = d.token
"""

POSITIONS = """
CREATE VIEW positions AS
SELECT p.address, p.token, t.symbol, t.decimals, p.streams_out, p.streaming_out, p.streams_in, p.streaming_in,
       p.claimable,
       token_amount(p.streaming_out, t.decimals) AS streaming_out_human,
       token_amount(p.streaming_in, t.decimals) AS streaming_in_human,
       token_amount(p.claimable, t.decimals) AS claimable_human,
       p.as_of
FROM (
    SELECT party.address, b.token,
           count(*) FILTER (WHERE party.role = 'sender') AS streams_out,
           coalesce(sum(b.locked) FILTER (WHERE party.role = 'sender'), 0)::numeric(76, 0) AS streaming_out,
           count(*) FILTER (WHERE party.role = 'recipient') AS streams_in,
           coalesce(sum(b.locked) FILTER (WHERE party.role = 'recipient'), 0)::numeric(76, 0) AS streaming_in,
           coalesce(sum(b.claimable) FILTER (WHERE party.role = 'recipient'), 0)::numeric(76, 0) AS claimable,
           max(b.as_of) AS as_of
    FROM stream_balances b
    CROSS JOIN LATERAL (VALUES ('sender', b.sender), ('recipient', b.recipient)) AS party(role, address)
    WHERE b.status IN ('active', 'paused')
    GROUP BY party.address, b.token
) p
LEFT JOIN tokens t ON t.address = p.token
"""

PROTOCOL_FEES = """
CREATE VIEW protocol_fees AS
SELECT f.token, t.symbol, t.decimals, f.treasury, f.fee_events, f.fees, token_amount(f.fees, t.decimals) AS fees_human,
       f.first_at, f.last_at
FROM (
    SELECT fee.token, fee.treasury, count(*) AS fee_events, sum(fee.fee_amount)::numeric(76, 0) AS fees,
           min(fee.ledger_closed_at) AS first_at, max(fee.ledger_closed_at) AS last_at
    FROM (
        SELECT coalesce(e.token, s.token) AS token, e.fee_amount, e.ledger_closed_at,
               -- builds whose fee_collected names no treasury paid the one configured at the time
               coalesce(e.treasury, (
                   SELECT coalesce(c.new_treasury, c.treasury) FROM events c
                   WHERE c.contract_id = e.contract_id AND c.id < e.id
                     AND c.kind IN ('protocol.initialized', 'protocol.fee_config_updated')
                   ORDER BY c.id DESC LIMIT 1)) AS treasury
        FROM events e
        LEFT JOIN streams s ON s.contract_id = e.contract_id AND s.stream_id = e.stream_id
        WHERE e.kind = 'stream.fee_collected'
    ) fee
    GROUP BY fee.token, fee.treasury
) f
LEFT JOIN tokens t ON t.address = f.token
"""

VIEWS = {'stream_balances': STREAM_BALANCES, 'daily_flows': DAILY_FLOWS, 'positions': POSITIONS,
         'protocol_fees': PROTOCOL_FEES}


def _literal(text: str | None) -> str:
    return 'NULL' if text is None else "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.create_table('tokens',
    sa.Column('address', sa.Text(), nullable=False, comment='the token contract (C... strkey), as streams.token names it'),
    sa.Column('name', sa.Text(), nullable=True, comment="the token's name (its name()); NULL until known"),
    sa.Column('symbol', sa.Text(), nullable=True, comment="the token's symbol (its symbol()); NULL until known"),
    sa.Column('decimals', sa.BigInteger(), nullable=True, comment="u32, the token's decimals(): N smallest units are N / 10^decimals tokens; NULL until known, and the views' human amounts with it"),
    sa.Column('source', sa.Text(), nullable=False, comment='where name, symbol and decimals were read: the token contract (chain) or set by hand (manual)'),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment="when the row was written (the server's clock)"),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_tokens')),
    comment="each token's name, symbol and decimals, for amounts people can read; one row per token contract"
    )
    for table, comment in TABLE_COMMENTS.items():
        op.create_table_comment(table, comment)
    for (table, column), (comment, _) in COLUMN_COMMENTS.items():
        op.execute(f'COMMENT ON COLUMN {table}.{column} IS {_literal(comment)}')
    op.execute(f'COMMENT ON TABLE alembic_version IS {_literal(ALEMBIC_COMMENTS[0])}')
    op.execute(f'COMMENT ON COLUMN alembic_version.version_num IS {_literal(ALEMBIC_COMMENTS[1])}')
    op.execute(TOKEN_AMOUNT)
    op.execute(f'COMMENT ON FUNCTION token_amount(NUMERIC, BIGINT) IS {_literal(TOKEN_AMOUNT_COMMENT)}')
    for view, definition in VIEWS.items():
        op.execute(definition)
        op.execute(f'COMMENT ON VIEW {view} IS {_literal(VIEW_COMMENTS[view])}')
        for column, comment in VIEW_COLUMN_COMMENTS[view].items():
            op.execute(f'COMMENT ON COLUMN {view}.{column} IS {_literal(comment)}')


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f'DROP VIEW {view}')
    op.execute('DROP FUNCTION token_amount(NUMERIC, BIGINT)')
    op.execute('COMMENT ON COLUMN alembic_version.version_num IS NULL')
    op.execute('COMMENT ON TABLE alembic_version IS NULL')
    for (table, column), (_, before) in COLUMN_COMMENTS.items():
        op.execute(f'COMMENT ON COLUMN {table}.{column} IS {_literal(before)}')
    for table in TABLE_COMMENTS:
        op.drop_table_comment(table)
    op.drop_table('tokens')
