"""Each token the streams name gets a tokens row with its name, symbol and decimals, read from the token
contract's instance storage as it holds them; a row set by hand is kept; the APIs serve them with each
stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from stellar_sdk import Address, xdr

from api.app import create_app
from devnet import entries, running_devnet
from devnet.tokens import Token
from indexer.rpc import RpcClient
from indexer.storage import decode_token_metadata, instance_key, token_metadata
from indexer.worker import Worker
from tests import commands
from tests.indexing import bootstrap_once, index_until_caught_up, worker_settings
from tests.live import Received, read_sse
from tests.serving import http_client, running_app


async def test_the_worker_reads_each_new_tokens_metadata_from_its_contract(
    database_url: str, db: asyncpg.Connection
) -> None:
    with running_devnet(seed=21, traffic_per_ledger=6) as devnet:
        chain = devnet.chain
        for _ in range(12):
            chain.close_ledger()
        used = {stream.token_address for stream in chain.contract.streams.values()}
        assert len(used) >= 2
        await db.execute("INSERT INTO tokens (address, name, symbol, decimals, source) "
                         "VALUES ($1, 'Set by hand', 'HAND', 2, 'manual')", sorted(used)[0])
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        rows = {row["address"]: tuple(row)[1:] for row in
                await db.fetch("SELECT address, name, symbol, decimals, source FROM tokens")}
        indexed = {row["token"] for row in await db.fetch("SELECT DISTINCT token FROM streams")}
        settings = worker_settings(devnet, database_url)
        with running_app(create_app(settings, database_url)) as base_url:
            async with http_client(base_url=base_url, timeout=10) as http:
                served = (await http.get("/streams", params={"limit": 500})).json()["items"]
                served_v1 = (await http.get("/v1/streams", params={"limit": 100})).json()["data"]
                events = (await http.get("/events", params={"limit": 500})).json()["items"]
                async with http.stream("GET", "/events/subscribe", params={"all": "true", "lastEventId": "0"}) as sse:
                    replayed = Received()
                    await read_sse(sse, replayed, stop_after=len(events))
        token_of = {int(row["stream_id"]): row["token"] for row in await db.fetch("SELECT * FROM streams")}
    assert set(rows) == indexed >= used
    for address, row in rows.items():
        token = chain.tokens.get(address)
        assert token is not None
        expected = (("Set by hand", "HAND", 2, "manual") if address == sorted(used)[0]
                    else (token.name, token.symbol, token.decimals, "chain"))
        assert row == expected
    # the APIs name each stream's token as the tokens table does
    assert served and served_v1
    for item in served:
        assert (item["tokenSymbol"], item["tokenDecimals"]) == rows[item["token"]][1:3]
    for item in served_v1:
        assert (item["tokenSymbol"], item["tokenDecimals"]) == rows[item["tokenAddress"]][1:3]
    # so do the events of those streams, over REST and SSE alike; protocol events name no token
    assert replayed.data == events
    assert sum("streamId" in event for event in events) > 10
    for event in events:
        if "streamId" in event:
            symbol, decimals = rows[token_of[int(event["streamId"])]][1:3]
            assert (event["tokenSymbol"], event["tokenDecimals"]) == (symbol, decimals), event
        elif "tokenAddress" not in event:
            assert "tokenSymbol" not in event, event



async def test_a_contract_without_metadata_or_without_an_instance_has_none() -> None:
    nowhere = "CA3D5KRYM6CB7OWQ6TWYRR3Z4T7GNZLKERYNZGGA5SOAOPIFY6YQGAXE"  # no contract there
    with running_devnet(seed=22) as devnet:
        token = devnet.chain.tokens.defaults[0]
        async with RpcClient(devnet.url) as rpc:
            found = await token_metadata(rpc, [token.contract_id, nowhere])
            flowfi = await rpc.get_ledger_entries([instance_key(devnet.chain.contract_id)])
    metadata = found[token.contract_id]
    assert metadata is not None
    assert (metadata.name, metadata.symbol, metadata.decimals) == (token.name, token.symbol, token.decimals)
    assert found[nowhere] is None
    (instance,) = flowfi.entries
    assert decode_token_metadata(instance.xdr) is None  # the FlowFi contract's instance has no METADATA


async def test_bootstrap_writes_the_tokens_of_the_streams_it_reads(database_url: str, db: asyncpg.Connection) -> None:
    with running_devnet(seed=23, traffic_per_ledger=6) as devnet:
        for _ in range(8):
            devnet.chain.close_ledger()
        async with RpcClient(devnet.url) as rpc:
            await bootstrap_once(rpc, database_url, devnet.chain.contract_id)
        rows = {row["address"]: (row["symbol"], row["decimals"]) for row in await db.fetch("SELECT * FROM tokens")}
        streams = {row["token"] for row in await db.fetch("SELECT token FROM streams")}
        tokens = {address: devnet.chain.tokens.get(address) for address in streams}
    assert rows and set(rows) == streams
    assert rows == {address: (token.symbol, token.decimals) for address, token in tokens.items() if token}


async def test_tokens_refresh_reads_the_metadata_again_and_keeps_rows_set_by_hand(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    with running_devnet(seed=24, traffic_per_ledger=6) as devnet:
        for _ in range(8):
            devnet.chain.close_ledger()
        await index_until_caught_up(Worker(worker_settings(devnet, database_url), database_url), devnet)
        stale, by_hand = [row["address"] for row in await db.fetch("SELECT address FROM tokens ORDER BY address")][:2]
        await db.execute("UPDATE tokens SET symbol = 'OLD', decimals = NULL WHERE address = $1", stale)
        await db.execute("UPDATE tokens SET symbol = 'HAND', source = 'manual' WHERE address = $1", by_hand)
        done = await asyncio.to_thread(
            commands.run, "tokens", "--refresh", "--rpc-url", devnet.url, "--database-url", database_url,
            data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"1 changed: {stale}; 1 set by hand, kept" in done.stderr
    assert f"read {len(await db.fetch('SELECT 1 FROM tokens')) - 1} tokens from" in done.stderr
    rows = {row["address"]: row for row in await db.fetch("SELECT * FROM tokens")}
    token = devnet.chain.tokens.get(stale)
    assert token is not None
    assert (rows[stale]["symbol"], rows[stale]["decimals"]) == (token.symbol, token.decimals)
    assert rows[by_hand]["symbol"] == "HAND"
    header, *listed = [line.split("\t") for line in done.stdout.splitlines()]
    assert header == ["address", "symbol", "decimals", "name", "source"]
    assert [(line[0], line[1], line[-1]) for line in listed] == [
        (address, row["symbol"], row["source"]) for address, row in sorted(rows.items())]


def test_a_token_named_with_a_nul_reads_with_a_replacement_character() -> None:
    """Anyone can deploy a token and stream it: a NUL in its name (which PostgreSQL's text cannot hold) must
    not stop the worker at the tokens row."""
    token = "CA3D5KRYM6CB7OWQ6TWYRR3Z4T7GNZLKERYNZGGA5SOAOPIFY6YQGAXE"
    named = entries.token_instance(Token(token, "AB\0C"))
    data = xdr.LedgerEntryData(xdr.LedgerEntryType.CONTRACT_DATA, contract_data=xdr.ContractDataEntry(
        ext=xdr.ExtensionPoint(0), contract=Address(token).to_xdr_sc_address(),
        key=xdr.SCVal(xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE),
        durability=xdr.ContractDataDurability.PERSISTENT, val=named))
    metadata = decode_token_metadata(data.to_xdr())
    assert metadata is not None and metadata.name.startswith("AB\ufffdC:") and metadata.symbol == "AB\ufffdC"
