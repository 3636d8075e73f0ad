"""The dictionary says what the contract does where it surprises: claimable drops at a rate change
(modify_rate re-anchors without paying what had accrued, which stays in the stream), a steps stream counts
its steps up to the first still locked, a stream a recipient transfer settled in full stays active, and
end times are rounded down and, for hybrid and steps streams, not moved by a pause. The events' sender and
recipient are the stream's parties for every stream event (the new recipient in a recipient transfer),
the event's own fields only where the stream has no row; they said NULL for the kinds without the field.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENDER_KINDS = (
    "address, a G... account or C... contract strkey. Set by stream.created, stream.topped_up?, stream.cancelled?, "
    "stream.paused?, stream.resumed?, stream.step_vesting_created, stream.hybrid_cliff_created, "
    "stream.allowance_created, stream.rate_modified?, stream.dispute_requested?; NULL for other kinds and where a ? "
    "kind leaves it out")
RECIPIENT_KINDS = (
    "address, a G... account or C... contract strkey. Set by stream.created, stream.withdrawn?, stream.completed?, "
    "stream.cancelled?, stream.step_vesting_created, stream.hybrid_cliff_created, stream.allowance_created; NULL for "
    "other kinds and where a ? kind leaves it out")
UNKNOWN_STREAM = ("NULL for protocol events. Where the stream has no row in streams (created before the indexed "
                  "history began), the event's own field: ")
END_TIME = (
    "when the deposit runs out, as the contract projects it at the stream's last event: for a linear stream, when "
    "what is left will have accrued at its rate (while paused, if resumed then); for a hybrid stream, cliff_time plus "
    "the rest at its rate, and for a steps stream its last unlock, paused or not (get_projected_end_time: a pause "
    "does not move them). Rounded down to the second: the last units, fewer than rate_per_second, may vest a second "
    "later")

BEFORE = {
    "COLUMN events.sender":
        "For stream events the stream's sender at that event, whichever kind (the event's own where the stream is "
        "unknown); NULL for protocol events. The event's field: " + SENDER_KINDS,
    "COLUMN events.recipient":
        "For stream events the stream's recipient at that event, whichever kind (the event's own where the stream "
        "is unknown); NULL for protocol events. The event's field: " + RECIPIENT_KINDS,
    "COLUMN streams.status": "active, paused, cancelled, completed (withdrawn in full) or closed (storage deleted)",
    "COLUMN streams.end_time":
        "u64, unix seconds, ledger time: when the deposit runs out, as the contract projects it at the stream's last "
        "event; while paused, if resumed then; NULL while a milestone is unmet",
    "COLUMN streams.step_times":
        "u64, unix seconds, ledger time: a steps stream's unlock times, in the contract's order (2^64-1: milestone "
        "not met); empty for other schedules",
    "COLUMN stream_balances.status": "active, paused, cancelled, completed or closed",
    "COLUMN stream_balances.claimable":
        "i128, in the token's smallest unit: what the recipient could withdraw now; 0 once the stream is cancelled, "
        "completed or closed",
    "COLUMN stream_balances.end_time":
        "u64, unix seconds, ledger time: when the deposit runs out, as the contract projects it (streams.end_time)",
    "VIEW positions":
        "per address and token, its open (active or paused) streams: what is still locked in those it sends and in "
        "those it receives, and what it can claim now (ledger time, see as_of)",
}
AFTER = {
    "COLUMN events.sender":
        "For stream events the stream's sender at that event, whichever kind; " + UNKNOWN_STREAM + SENDER_KINDS,
    "COLUMN events.recipient":
        "For stream events the stream's recipient at that event, whichever kind (in stream.recipient_transferred "
        "the new one); " + UNKNOWN_STREAM + RECIPIENT_KINDS,
    "COLUMN streams.status":
        "active, paused, cancelled, completed (withdrawn in full) or closed (storage deleted). Only a withdrawal "
        "completes a stream: one that a recipient transfer settled in full stays active, with nothing left, as on "
        "chain",
    "COLUMN streams.end_time": "u64, unix seconds, ledger time: " + END_TIME + ". NULL while a milestone is unmet",
    "COLUMN streams.step_times":
        "u64, unix seconds, ledger time: a steps stream's unlock times, in the contract's order (2^64-1: milestone "
        "not met); claimable counts them in this order up to the first still locked, so a milestone met after one "
        "not yet met unlocks nothing until that one is; empty for other schedules",
    "COLUMN stream_balances.status":
        "active, paused, cancelled, completed or closed; a stream that a recipient transfer settled in full stays "
        "active, with nothing remaining",
    "COLUMN stream_balances.claimable":
        "i128, in the token's smallest unit: what the recipient could withdraw now; 0 once the stream is cancelled, "
        "completed or closed. A rate change (stream.rate_modified) drops it to 0: the contract accrues anew from "
        "then without paying what had accrued, which stays in the stream (locked) and streams again at the new "
        "rate, or goes back to the sender at a cancellation. A steps stream counts its steps in order up to the "
        "first still locked (see streams.step_times)",
    "COLUMN stream_balances.end_time":
        "u64, unix seconds, ledger time: when the deposit runs out, as the contract projects it (streams.end_time: "
        "rounded down to the second, and for hybrid and steps streams not moved by a pause)",
    "VIEW positions":
        "per address and token, its open (active or paused) streams: what is still locked in those it sends and in "
        "those it receives, and what it can claim now (ledger time, see as_of). A stream that a recipient transfer "
        "settled in full stays active, so it counts here with nothing locked",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    for target, comment in AFTER.items():
        op.execute(f'COMMENT ON {target} IS {_literal(comment)}')


def downgrade() -> None:
    for target, comment in BEFORE.items():
        op.execute(f'COMMENT ON {target} IS {_literal(comment)}')
