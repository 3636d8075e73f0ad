"""A large indexed history in seconds: synthetic rows generated inside PostgreSQL.

Every stream has ten events (created, then withdrawals and top-ups), fifty events per ledger, ids
built as Stellar RPC builds them ("%019d-%010d" of the TOID), parties from a pool of accounts; the
contract_events, events, event_parties, streams and indexer_cursor rows agree with one another. The
rows come from `generate_series`, so a million events cost no Python work per row. They belong to a
contract of their own, so that events committed later by `bench.feed.Feed` (the local network's
contract) never touch these streams.
"""

from __future__ import annotations

import random
import time

import asyncpg
from stellar_sdk import Keypair, StrKey

from bench import Postgres
from indexer.database import asyncpg_dsn

CONTRACT_ID = StrKey.encode_contract(bytes(range(32)))
TOKEN_ID = StrKey.encode_contract(bytes(range(1, 33)))
FIRST_LEDGER = 1_000
PER_LEDGER = 50
EVENTS_PER_STREAM = 10
CLOSE_TIME_0 = 1_767_225_600  # 2026-01-01T00:00:00Z

_ID = "lpad((({ledger})::bigint << 32 | (({tx}) << 12))::text, 19, '0') || '-0000000000'"
_SERIES = f"""
    SELECT g,
           {FIRST_LEDGER} + g / {PER_LEDGER} AS ledger,
           g % {PER_LEDGER} + 1 AS tx,
           g / {EVENTS_PER_STREAM} + 1 AS stream_id,
           g % {EVENTS_PER_STREAM} AS step,
           $1::text[] AS people
    FROM generate_series(0, $2::bigint - 1) AS g
"""

_EVENTS = f"""
INSERT INTO events (id, kind, ledger, ledger_closed_at, tx_hash, contract_id, stream_id, sender, recipient,
                    rate_per_second, token_address, deposited_amount, start_time, amount, new_deposited_amount,
                    new_end_time, timestamp)
SELECT {_ID.format(ledger="s.ledger", tx="s.tx")},
       CASE WHEN s.step = 0 THEN 'stream.created' WHEN s.step % 3 = 0 THEN 'stream.topped_up'
            ELSE 'stream.withdrawn' END,
       s.ledger, to_timestamp({CLOSE_TIME_0} + 5 * s.ledger), md5(s.g::text) || md5((s.g + 1)::text), $3,
       s.stream_id, s.people[1 + s.stream_id % 997], s.people[1 + (s.stream_id * 7 + 3) % 997],
       CASE WHEN s.step = 0 THEN 1000 END, CASE WHEN s.step = 0 THEN $4 END,
       CASE WHEN s.step = 0 THEN 100000000 END, CASE WHEN s.step = 0 THEN {CLOSE_TIME_0} + 5 * s.ledger END,
       CASE WHEN s.step > 0 THEN 5000 END, CASE WHEN s.step > 0 AND s.step % 3 = 0 THEN 100000000 + s.step END,
       CASE WHEN s.step > 0 AND s.step % 3 = 0 THEN {CLOSE_TIME_0} + 5 * s.ledger + 100000 END,
       CASE WHEN s.step > 0 AND s.step % 3 <> 0 THEN {CLOSE_TIME_0} + 5 * s.ledger END
FROM ({_SERIES}) AS s
"""

_RAW = """
INSERT INTO contract_events (id, ledger, ledger_closed_at, tx_hash, contract_id, topic_xdr, value_xdr, topic, value)
SELECT e.id, e.ledger, e.ledger_closed_at, e.tx_hash, e.contract_id,
       ARRAY['AAAADwAAAA5zdHJlYW1fY3JlYXRlZAAA', 'AAAABQAAAAAAAAAB'], 'AAAAEQAAAAEAAAAA',
       jsonb_build_array(replace(e.kind, '.', '_'), e.stream_id::text),
       jsonb_build_object('stream_id', e.stream_id::text)
FROM events e
"""

_PARTIES = """
INSERT INTO event_parties (address, event_id)
SELECT sender, id FROM events UNION SELECT recipient, id FROM events
"""

_STREAMS = """
INSERT INTO streams (contract_id, stream_id, sender, recipient, token, rate_per_second, deposited, withdrawn,
                     refunded, fees_paid, status, start_time, last_update_time, paused_at, end_time, schedule,
                     step_times, step_amounts, conditional, allowance, terms_source, created_at, updated_at,
                     first_event_id, last_event_id)
SELECT c.contract_id, c.stream_id, c.sender, c.recipient, c.token_address, 1000, 100000000,
       5000 * (count(*) FILTER (WHERE l.kind = 'stream.withdrawn')), 0, 250000, 'active', c.start_time,
       max(l.timestamp), NULL, c.start_time + 100000, 'linear', '{}', '{}', false, false, 'events',
       c.ledger_closed_at, max(l.ledger_closed_at), c.id, max(l.id)
FROM events c JOIN events l ON l.stream_id = c.stream_id AND l.contract_id = c.contract_id
WHERE c.kind = 'stream.created'
GROUP BY c.contract_id, c.stream_id, c.sender, c.recipient, c.token_address, c.start_time, c.ledger_closed_at, c.id
"""

_CURSOR = """
INSERT INTO indexer_cursor (contract_ids, rpc_cursor, last_event_id, last_ledger, latest_ledger,
                            latest_ledger_closed_at, events_indexed)
SELECT $1, max(id), max(id), max(ledger), max(ledger), max(ledger_closed_at), count(*) FROM events
"""

_databases: dict[int, str] = {}


async def fill(url: str, events: int, *, seed: int = 5) -> float:
    """Fill an empty migrated database with `events` synthetic events; the seconds it took."""
    rng = random.Random(seed)
    people = [Keypair.from_raw_ed25519_seed(rng.randbytes(32)).public_key for _ in range(997)]
    conn = await asyncpg.connect(asyncpg_dsn(url))
    started = time.perf_counter()
    try:
        async with conn.transaction():
            await conn.execute(_EVENTS, people, events, CONTRACT_ID, TOKEN_ID)
            await conn.execute(_RAW)
            await conn.execute(_PARTIES)
            await conn.execute(_STREAMS)
            await conn.execute(_CURSOR, CONTRACT_ID)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def database(postgres: Postgres, events: int) -> tuple[str, float]:
    """A database holding `events` synthetic events (made once per size and run); its URL and the seconds
    it took to fill."""
    if events in _databases:
        return _databases[events], 0.0
    url = await postgres.fresh_database()
    seconds = await fill(url, events)
    _databases[events] = url
    return url, seconds
