from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from devnet import Traffic, running_devnet
from indexer import rpc as rpc_module
from indexer.ids import end_of_ledger
from indexer.rpc import (
    FatalRpcError,
    NotYetAvailable,
    OutOfRetention,
    RetryableRpcError,
    RpcClient,
    Unreachable,
    _translate_error,
    raw_event,
)
from tests.commands import free_port


def test_json_rpc_errors_become_retryable_or_fatal() -> None:
    db_read = _translate_error("getEvents", {"code": -32600, "message": "x\ndb read failed for requested parameter"})
    assert isinstance(db_read, RetryableRpcError)
    assert isinstance(_translate_error("getEvents", {"code": -32001, "message": "request timed out"}),
                      RetryableRpcError)
    assert isinstance(_translate_error("getEvents", {"code": -32603, "message": "internal error"}), RetryableRpcError)
    invalid = _translate_error("getEvents", {"code": -32602, "message": "cursor and startLedger both set"})
    assert isinstance(invalid, FatalRpcError) and not isinstance(invalid, OutOfRetention)
    assert "cursor and startLedger both set" in str(invalid)


async def test_a_ledger_out_of_range_is_lost_below_the_oldest_and_not_yet_there_above_the_newest() -> None:
    with running_devnet(retention=10) as devnet:
        for _ in range(30):
            devnet.chain.close_ledger()
        oldest, latest = devnet.chain.oldest.sequence, devnet.chain.latest.sequence
        async with RpcClient(devnet.url) as client:
            with pytest.raises(OutOfRetention) as lost:
                await client.get_events((devnet.chain.contract_id,), start_ledger=oldest - 1)
            assert (lost.value.oldest_ledger, lost.value.latest_ledger) == (oldest, latest)
            with pytest.raises(NotYetAvailable) as early:
                await client.get_events((devnet.chain.contract_id,), start_ledger=latest + 2)
            assert (early.value.wanted, early.value.latest_ledger) == (latest + 2, latest)
            devnet.faults.inject("behind")  # the next answer comes from a node a ledger behind
            with pytest.raises(NotYetAvailable):
                await client.get_events((devnet.chain.contract_id,), cursor=end_of_ledger(latest))
            assert (await client.get_events((devnet.chain.contract_id,), cursor=end_of_ledger(latest))).events == ()


async def test_the_client_reads_the_local_network_as_it_reads_stellar_rpc() -> None:
    with running_devnet() as devnet:
        devnet.chain.execute("initialize", {"admin": "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S",
                                            "treasury": "GBDK4KAKYLSGPQSZB65NBASVBK7D6X7C6XCNA3EANO3KT7ZBDLGTP72S",
                                            "fee_rate_bps": 10})
        async with RpcClient(devnet.url) as client:
            network = await client.get_network()
            assert network.passphrase == devnet.chain.passphrase
            health = await client.get_health()
            assert health.latest_ledger == devnet.chain.latest.sequence
            page = await client.get_events((devnet.chain.contract_id,), start_ledger=1, limit=10)
            assert [e.topic for e in page.events] and page.events[0].ledger_closed_at.tzinfo is not None
            # a short page's cursor moves past the scanned window: the next page is empty, not a repeat
            assert (await client.get_events((devnet.chain.contract_id,), cursor=page.cursor)).events == ()
            with pytest.raises(ValueError):
                await client.get_events((devnet.chain.contract_id,))
            devnet.faults.inject("http500")
            with pytest.raises(RetryableRpcError, match="HTTP 500"):
                await client.get_health()


async def test_a_ledger_s_hash_and_close_time_come_from_get_ledgers() -> None:
    with running_devnet(retention=5) as devnet:
        for _ in range(8):
            devnet.chain.close_ledger()
        async with RpcClient(devnet.url) as rpc:
            ledger = await rpc.get_ledger(7)
            assert (ledger.sequence, ledger.hash, ledger.close_time) == (
                7, devnet.chain.ledger(7).hash, devnet.chain.ledger(7).close_time)
            with pytest.raises(OutOfRetention):
                await rpc.get_ledger(3)
            with pytest.raises(NotYetAvailable):
                await rpc.get_ledger(10)


async def test_an_answer_s_body_is_not_left_in_a_reference_cycle() -> None:
    """The worker's process runs the cyclic collector seldom (see indexer/worker.py): a page of events
    (megabytes) that a cycle kept would stay in memory until then."""
    with running_devnet() as devnet:
        devnet.chain.generate_history(200, traffic=Traffic(seed=5), tx_per_ledger=10)
        async with RpcClient(devnet.url) as client:
            gc.collect()
            gc.disable()
            try:
                page = await client.get_events((devnet.chain.contract_id,), start_ledger=1, limit=200)
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                kept = [len(r) for o in gc.garbage for r in gc.get_referents(o) if isinstance(r, bytes)]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
    assert len(page.events) == 200
    assert max(kept, default=0) < 10_000  # the request and answer heads, not the page's ~100 KB


async def test_an_unreachable_server_is_retryable_and_the_message_says_which_setting_names_it() -> None:
    port = free_port()  # nothing listens there
    async with RpcClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(RetryableRpcError) as unreachable:
            await client.get_health()
    assert f"cannot reach http://127.0.0.1:{port}" in str(unreachable.value)
    assert "FLOWFI_RPC_URL" in str(unreachable.value)


async def test_a_server_that_accepts_no_connection_in_time_is_unreachable_not_slow() -> None:
    """A listener whose queue of connections is full drops new ones, as a firewall does: the connection
    times out, which says nothing of how the server answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = [socket.socket() for _ in range(4)]
        try:
            for waiting in queued:
                waiting.setblocking(False)
                waiting.connect_ex(("127.0.0.1", port))
            async with RpcClient(f"http://127.0.0.1:{port}", timeout=0.5) as client:
                with pytest.raises(Unreachable) as unreachable:
                    await client.get_health()
        finally:
            for waiting in queued:
                waiting.close()
    assert str(unreachable.value).startswith(f"getHealth: cannot reach http://127.0.0.1:{port} (no connection "
                                             "within 0.5 s); is the RPC server running, and is that its URL")


async def test_an_answer_that_does_not_decompress_is_retryable() -> None:
    async def spoilt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"this is not gzip"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(spoilt, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with RpcClient(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(RetryableRpcError, match="does not decode"):
                await client.get_health()
    finally:
        server.close()
        await server.wait_closed()


async def _serving(answer: Callable[[dict[str, Any]], bytes]) -> tuple[asyncio.Server, str]:
    """A server on loopback that answers each JSON-RPC request with answer(request)'s bytes."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        body = answer(orjson.loads(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _event(ledger: int, index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "contract", "ledger": ledger, "ledgerClosedAt": "2026-07-21T18:01:10Z", "contractId": "C",
            "id": f"{(ledger << 32) | (1 << 12) | 1:019d}-{index:010d}", "txHash": "ab", "topic": ["AAAADwAAAAF4AAAA"],
            "value": "AAAAAQ==", "inSuccessfulContractCall": True, **fields}


def _page(events: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"events": events, "cursor": end_of_ledger(12), "latestLedger": 12, "oldestLedger": 1,
            "latestLedgerCloseTime": "1784656870", **fields}


GOOD = [_event(10, 0), _event(10, 1), _event(11, 0)]
MALFORMED_PAGES = {
    "out of order": _page([GOOD[1], GOOD[0], GOOD[2]]),
    "an id twice": _page([GOOD[0], GOOD[0], GOOD[2]]),
    "not an id": _page([*GOOD[:2], {**GOOD[2], "id": "zzz"}]),
    "an id of another ledger": _page([*GOOD[:2], {**GOOD[2], "ledger": 9}]),
    "an event past the newest ledger": _page(GOOD, latestLedger=10, cursor=end_of_ledger(10)),
    "an event at or before the cursor asked": _page([_event(5, 0), *GOOD]),
    "a topic of numbers": _page([*GOOD[:2], {**GOOD[2], "topic": [1, 2]}]),
    "a NUL in a value": _page([*GOOD[:2], {**GOOD[2], "value": "AAAA\u0000"}]),
    "a close time without its zone": _page([*GOOD[:2], {**GOOD[2], "ledgerClosedAt": "2026-07-21T18:01:10"}]),
    "a success flag that is a string": _page([*GOOD[:2], {**GOOD[2], "inSuccessfulContractCall": "false"}]),
    "a cursor that is not one": _page(GOOD, cursor="zzz"),
    "a cursor behind its last event": _page(GOOD, cursor=GOOD[1]["id"]),
    "a cursor past the newest ledger": _page(GOOD, cursor=end_of_ledger(13)),
    "a newest ledger past a u32": _page(GOOD, latestLedger=2**40),
    "a close time past year 9999": _page(GOOD, latestLedgerCloseTime=10**15),
}


@pytest.mark.parametrize("page", MALFORMED_PAGES.values(), ids=MALFORMED_PAGES.keys())
async def test_a_page_stellar_rpc_would_not_send_is_a_malformed_answer_retried(page: dict[str, Any]) -> None:
    """Followed, such a page would lose events (a cursor that skips, an id that sorts after the rest), store
    them twice, or stop the worker at a row PostgreSQL refuses."""
    server, url = await _serving(lambda request: orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": page}))
    try:
        async with RpcClient(url) as client:
            good = _page(GOOD)
            assert page != good
            with pytest.raises(RetryableRpcError, match="getEvents returned a malformed result"):
                await client.get_events(("C",), cursor=f"{(9 << 32):019d}-0000000000", limit=100)
    finally:
        server.close()
        await server.wait_closed()


async def test_an_answer_cut_short_says_so_and_where_the_json_broke_off() -> None:
    whole = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": _page([_event(10, i) for i in range(40)])})
    server, url = await _serving(lambda request: whole[: len(whole) - 100])
    try:
        async with RpcClient(url) as client:
            with pytest.raises(RetryableRpcError) as events:
                await client.get_events(("C",), start_ledger=10, limit=100)
            with pytest.raises(RetryableRpcError) as health:
                await client.get_health()
    finally:
        server.close()
        await server.wait_closed()
    assert str(events.value).startswith("getEvents: the answer is not JSON (Input data was truncated)")
    assert str(health.value).startswith("getHealth: the answer is not JSON (unexpected end of data")
    assert f"(char {len(whole) - 100})" in str(health.value), "where it broke off, past the start the message shows"


async def test_an_answer_nested_past_the_parser_s_depth_is_retried_not_a_crash() -> None:
    """msgspec raises RecursionError past its depth, which the worker would not retry: it stopped."""
    deep = b"[" * 1200 + b"]" * 1200
    answer = b'{"jsonrpc": "2.0", "id": 1, "result": {"events": [], "cursor": "%s", "x": %s}}' % (
        end_of_ledger(12).encode(), deep)
    server, url = await _serving(lambda request: answer)
    try:
        async with RpcClient(url) as client:
            with pytest.raises(RetryableRpcError, match="getEvents: the answer is not JSON"):
                await client.get_events(("C",), start_ledger=10, limit=100)
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(ValueError):
        raw_event(b'{"id": %s}' % deep)


async def test_a_full_page_continues_right_after_its_last_event_whatever_cursor_it_names() -> None:
    page = _page(GOOD, cursor=end_of_ledger(12))  # past events of ledgers 11-12 the page did not hold
    server, url = await _serving(lambda request: orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": page}))
    try:
        async with RpcClient(url) as client:
            full = await client.get_events(("C",), start_ledger=10, limit=3)
            not_full = await client.get_events(("C",), start_ledger=10, limit=4)
    finally:
        server.close()
        await server.wait_closed()
    assert full.cursor == GOOD[-1]["id"] and not_full.cursor == end_of_ledger(12)


async def test_a_ledger_hash_that_is_not_one_is_a_malformed_answer() -> None:
    ledger = {"sequence": 7, "hash": None, "ledgerCloseTime": "1784656870"}
    server, url = await _serving(lambda request: orjson.dumps(
        {"jsonrpc": "2.0", "id": request["id"], "result": {"ledgers": [ledger], "latestLedger": 9}}))
    try:
        async with RpcClient(url) as client:
            with pytest.raises(RetryableRpcError, match="not 32 bytes in hex"):
                await client.get_ledger(7)
    finally:
        server.close()
        await server.wait_closed()


async def test_an_answer_that_trickles_is_cut_at_its_deadline_and_an_endless_one_at_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while True:  # a chunk of 1 KB every 50 ms: each read in time, the whole never
                writer.write(b"400\r\n" + b" " * 1024 + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.CancelledError):
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with RpcClient(url, timeout=0.25) as client:
            with pytest.raises(RetryableRpcError, match="did not arrive whole within 1 s"):
                await client.get_health()
        monkeypatch.setattr(rpc_module, "MAX_ANSWER_BYTES", 8 * 1024)
        async with RpcClient(url, timeout=5) as client:
            with pytest.raises(RetryableRpcError, match="passes 0 MB"):
                await client.get_health()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_network_without_its_passphrase_is_a_malformed_answer_not_the_network_none() -> None:
    server, url = await _serving(lambda request: orjson.dumps(
        {"jsonrpc": "2.0", "id": request["id"], "result": {"protocolVersion": 23}}))
    try:
        async with RpcClient(url) as client:
            with pytest.raises(RetryableRpcError, match="no valid 'passphrase'"):
                await client.get_network()
    finally:
        server.close()
        await server.wait_closed()
