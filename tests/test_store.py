"""Preparing pages ahead of their commit (store.prepare_page with a PreparedState, as the worker does)
writes what writing them one at a time writes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import asyncpg

from devnet import Traffic, running_devnet
from indexer import store
from indexer.decode import Decoded, decode
from indexer.rpc import EventPage, RpcClient
from indexer.state import StreamState
from tests.conftest import with_database
from tests.indexing import MODEL_BUILD, snapshot

CONTRACT = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"


async def _history(transactions_per_page: int) -> tuple[str, list[tuple[EventPage, list[Decoded]]]]:
    """A local network's events in pages of whole transactions, decoded, with the page each would be."""
    with running_devnet(seed=3, build=MODEL_BUILD) as devnet:
        devnet.chain.generate_history(300, traffic=Traffic(seed=3), tx_per_ledger=8)
        contract_id = devnet.chain.contract_id
        async with RpcClient(devnet.url) as rpc:
            page = await rpc.get_events((contract_id,), start_ledger=devnet.chain.oldest.sequence, limit=10_000)
    events = [decode(raw) for raw in page.events]
    by_transaction = [list(group) for _, group in itertools.groupby(events, key=lambda d: d.raw.id.split("-")[0])]
    pages = []
    for first in range(0, len(by_transaction), transactions_per_page):
        decoded = [d for tx in by_transaction[first : first + transactions_per_page] for d in tx]
        pages.append((EventPage(tuple(d.raw for d in decoded), decoded[-1].raw.id, page.latest_ledger, 0, 0), decoded))
    return contract_id, pages


async def test_pages_prepared_ahead_of_their_commit_write_what_one_page_at_a_time_writes(
    server_url: str, template_database: str, database_url: str, db: asyncpg.Connection
) -> None:
    contract_id, pages = await _history(transactions_per_page=3)
    assert len(pages) > 50
    for page, decoded in pages:
        await store.write_page(db, (contract_id,), page, decoded)

    ahead_url = with_database(server_url, "prepared_ahead")
    await db.execute('DROP DATABASE IF EXISTS "prepared_ahead"')
    await db.execute(f'CREATE DATABASE "prepared_ahead" TEMPLATE "{template_database}"')
    writer, reader = await asyncpg.connect(ahead_url), await asyncpg.connect(ahead_url)
    try:
        state = store.PreparedState(limit=5)
        prepared = []
        for page, decoded in pages:  # two pages prepared ahead of each commit, the worker's most
            prepared.append((page, await store.prepare_page(reader, decoded, None, state)))
            if len(prepared) == 3:
                first, first_prepared = prepared.pop(0)
                await store.commit_page(writer, (contract_id,), first, first_prepared)
                state.committed()
        # a page sent again (a data lake read from a transaction's ledger) is skipped, though not committed
        again = await store.prepare_page(reader, pages[-1][1], None, state)
        assert again.fresh == [] and again.streams == []
        for page, page_prepared in prepared:
            await store.commit_page(writer, (contract_id,), page, page_prepared)

        assert await snapshot(writer) == await snapshot(db)
        assert await writer.fetchval("SELECT count(*) FROM streams") > 20
    finally:
        await writer.close()
        await reader.close()
        await db.execute('DROP DATABASE "prepared_ahead" WITH (FORCE)')


def _stream(stream_id: int) -> StreamState:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return StreamState(CONTRACT, stream_id, "G", "G", "C", 1, 1, 0, 0, 0, "active", 0, 0, None, None, "linear", None,
                       None, (), (), False, False, "events", None, None, moment, moment, None, None)


async def test_the_states_of_pages_not_yet_committed_are_kept_beyond_the_limit(db: asyncpg.Connection) -> None:
    """What a PreparedState keeps it answers itself; the rest it reads from the index (here empty)."""
    state = store.PreparedState(limit=2)
    for page in range(3):  # three pages of two streams each, none committed
        state.prepared({(CONTRACT, page * 2 + i): _stream(page * 2 + i) for i in range(2)}, None)
    keys = {(CONTRACT, i) for i in range(6)}
    assert set(await state.streams(db, keys)) == keys

    state.committed()  # the first page's streams may go now, the least recently changed first
    state.prepared({(CONTRACT, 2): _stream(2)}, None)
    assert set(await state.streams(db, keys)) == keys - {(CONTRACT, 0), (CONTRACT, 1)}
    for _ in range(3):
        state.committed()
    state.prepared({}, None)
    assert set(await state.streams(db, keys)) == {(CONTRACT, 5), (CONTRACT, 2)}  # the two most recently changed
