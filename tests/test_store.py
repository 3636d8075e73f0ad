"""Preparing pages ahead of their commit (store.prepare_page with a PreparedState, as the worker does)
writes what writing them one at a time writes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devnet import Traffic, running_devnet
from indexer import ids, store
from indexer.accrual import SCHEDULES
from indexer.decode import Decoded, decode
from indexer.rpc import EventPage, RawEvent, RpcClient
from indexer.state import StreamState
from indexer.tables import STREAM_STATUSES, TERMS_SOURCES
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


U64 = st.integers(0, 2**64 - 1)
I128 = st.integers(-(2**127), 2**127 - 1)
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
MOMENTS = st.datetimes(timezones=st.just(UTC))
STREAMS = st.builds(
    StreamState, contract_id=TEXT, stream_id=U64, sender=TEXT, recipient=TEXT, token=TEXT, rate_per_second=I128,
    deposited=I128, withdrawn=I128, refunded=I128, fees_paid=I128, status=st.sampled_from(STREAM_STATUSES),
    start_time=U64, last_update_time=U64, paused_at=st.none() | U64, end_time=st.none() | U64,
    schedule=st.sampled_from(SCHEDULES), cliff_time=st.none() | U64, cliff_amount=st.none() | I128,
    step_times=st.lists(U64, max_size=3).map(tuple), step_amounts=st.lists(I128, max_size=3).map(tuple),
    conditional=st.booleans(), allowance=st.booleans(), terms_source=st.sampled_from(TERMS_SOURCES),
    dispute=st.none() | st.sampled_from(("requested", "approved", "rejected")),
    bootstrap_ledger=st.none() | st.integers(0, 2**63 - 1), created_at=MOMENTS, updated_at=MOMENTS,
    first_event_id=st.none() | TEXT, last_event_id=st.none() | TEXT,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(STREAMS, min_size=1, max_size=4, unique_by=lambda s: (s.contract_id, s.stream_id)))
async def test_streams_rows_read_back_as_the_states_written(db: asyncpg.Connection, states: list[StreamState]) -> None:
    written = db.transaction()
    await written.start()
    try:
        await db.execute("DELETE FROM streams")
        await store.upsert_streams(db, states)
        found = await store.load_streams(db, {(s.contract_id, s.stream_id) for s in states})
        assert found == {(s.contract_id, s.stream_id): s for s in states}
    finally:
        await written.rollback()  # nothing stays


async def test_a_page_from_a_data_lake_keeps_the_chains_close_time_a_getevents_page_gave(
    db: asyncpg.Connection
) -> None:
    """A lake's batch does not know when the chain's newest ledger closed (its page says 0): the close time
    known before stays, for the API's claimable now."""
    closed_at = 1_780_000_000
    await store.write_page(db, (CONTRACT,), EventPage((), ids.end_of_ledger(10), 12, 1, closed_at), [])
    await store.write_page(db, (CONTRACT,), EventPage((), ids.end_of_ledger(11), 12, 1, 0), [])
    row = await db.fetchrow("SELECT last_ledger, latest_ledger_closed_at FROM indexer_cursor")
    assert (row["last_ledger"], row["latest_ledger_closed_at"]) == (11, datetime.fromtimestamp(closed_at, UTC))


async def test_the_indexs_ledger_time_is_of_the_ledgers_indexed_not_the_chains_newest(db: asyncpg.Connection) -> None:
    """While the worker catches up, the views and claimableNow compute at the index's ledger time: a close
    time of a ledger it has indexed (its newest event's, the state being the same until the cursor's
    ledger), never the chain's newest, whose events are not indexed yet; once caught up, the chain's."""
    newest_closed_at = 1_780_000_900

    def event(ledger: int, closed_at: int) -> RawEvent:
        return RawEvent(id=ids.event_id(ledger, 1, 0, 0), ledger=ledger,
                        ledger_closed_at=datetime.fromtimestamp(closed_at, UTC), contract_id=CONTRACT)

    async def index_time() -> datetime | None:
        value: datetime | None = await db.fetchval("SELECT last_ledger_closed_at FROM indexer_cursor")
        return value

    behind = EventPage((event(3, 1_780_000_030), event(5, 1_780_000_050)), ids.end_of_ledger(8), 90, 1,
                       newest_closed_at)
    await store.write_page(db, (CONTRACT,), behind, [])
    assert await index_time() == datetime.fromtimestamp(1_780_000_050, UTC)
    # a full page ends within ledger 9: the cursor has covered ledger 8 whole, the state holds part of 9
    within = event(9, 1_780_000_090)
    await store.write_page(db, (CONTRACT,), EventPage((within,), within.id, 90, 1, newest_closed_at), [])
    assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == 8
    assert await index_time() == datetime.fromtimestamp(1_780_000_090, UTC)
    # a page without events while behind: the time known stays
    await store.write_page(db, (CONTRACT,), EventPage((), ids.end_of_ledger(40), 90, 1, newest_closed_at), [])
    assert await index_time() == datetime.fromtimestamp(1_780_000_090, UTC)
    caught_up = EventPage((), ids.end_of_ledger(90), 90, 1, newest_closed_at)
    await store.write_page(db, (CONTRACT,), caught_up, [])
    assert await index_time() == datetime.fromtimestamp(newest_closed_at, UTC)
    # a data lake's page past it does not know its ledgers' close times (0) but its events'
    await store.write_page(db, (CONTRACT,), EventPage((event(91, 1_780_000_905),), ids.end_of_ledger(95), 95, 1, 0),
                           [])
    assert await index_time() == datetime.fromtimestamp(1_780_000_905, UTC)
    # ledgers read again (a cursor moved back) leave the state as it was: so does its time
    await store.write_page(db, (CONTRACT,), behind, [])
    assert await db.fetchval("SELECT last_ledger FROM indexer_cursor") == 8
    assert await index_time() == datetime.fromtimestamp(1_780_000_905, UTC)
