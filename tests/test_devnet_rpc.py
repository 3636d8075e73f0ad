import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stellar_sdk import scval, xdr
from stellar_sdk.soroban_rpc import (
    GetEventsResponse,
    GetHealthResponse,
    GetLatestLedgerResponse,
    GetLedgersResponse,
    GetNetworkResponse,
)

from devnet import DEFAULT_CONTRACT_ID, DEFAULT_PASSPHRASE, Devnet, running_devnet
from devnet.xdr import encode_topic
from indexer.events import StreamPaused
from indexer.ids import end_of_ledger
from tests.serving import http_client

SENDER = "GAJKUTWHRMNW375TPXCKYDF4MLUBJIRD7YVKGCNN3J6S44GZE3N2LUBQ"
RECIPIENT = "GDD24I62LHMI6FRWMZ3OD36DDAM4MDQSFWS7G37HZDHHXTMBOGFV7GCO"
TOKEN = "CC5VQ6PDN44JTGIJ7XZAN2WPQHHCRQLOKWI2RRAXXRS3WR2HI25AHEX2"
OTHER_CONTRACT = "CAWVV6VAHHIKEPMBBGYXKUMPZ2JZUVBPJMDF27EEM32P5ACRYUXTBFSK"
CREATE = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "amount": 1000, "duration": 10}


@pytest.fixture
def devnet() -> Iterator[Devnet]:
    with running_devnet() as running:
        yield running


async def rpc(devnet: Devnet, method: str, params: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        body["params"] = params
    async with http_client(timeout=5) as client:
        response = await client.post(devnet.url, json=body)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    assert answer["id"] == 7
    return answer


async def events(devnet: Devnet, params: dict[str, Any]) -> dict[str, Any]:
    """A getEvents page; of FlowFi's events only (not the tokens' transfers) unless `params` has filters."""
    if "filters" not in params:
        params = {**params, "filters": [{"contractIds": [DEFAULT_CONTRACT_ID]}]}
    answer = await rpc(devnet, "getEvents", params)
    assert "error" not in answer, answer
    result: dict[str, Any] = answer["result"]
    return result


def fill(devnet: Devnet, ledgers: int, creates_per_ledger: int) -> None:
    for _ in range(ledgers):
        for _ in range(creates_per_ledger):
            devnet.chain.submit("create_stream", CREATE)
        devnet.chain.close_ledger()


async def test_pages_follow_the_cursor_and_a_short_page_ends_at_the_window(devnet: Devnet) -> None:
    fill(devnet, ledgers=3, creates_per_ledger=2)  # ledgers 2-4, events in tx 1 and 2 of each
    page = await events(devnet, {"startLedger": 1, "pagination": {"limit": 4}})
    ids = [e["id"] for e in page["events"]]
    assert len(ids) == 4 and page["cursor"] == ids[-1]
    page = await events(devnet, {"pagination": {"cursor": page["cursor"], "limit": 4}})
    assert len(page["events"]) == 2 and page["events"][0]["id"] > ids[-1]
    ids += [e["id"] for e in page["events"]]
    assert page["cursor"] == end_of_ledger(4)
    assert ids == sorted(ids) and len(set(ids)) == 6

    empty = await events(devnet, {"pagination": {"cursor": page["cursor"]}})
    assert empty["events"] == [] and empty["cursor"] == end_of_ledger(4)

    devnet.chain.close_ledger()
    fill(devnet, ledgers=1, creates_per_ledger=1)
    moved = await events(devnet, {"pagination": {"cursor": empty["cursor"]}})
    assert [e["ledger"] for e in moved["events"]] == [6]
    assert moved["cursor"] == end_of_ledger(6)


async def test_end_ledger_is_exclusive_and_bounds_the_cursor(devnet: Devnet) -> None:
    fill(devnet, ledgers=4, creates_per_ledger=1)  # ledgers 2-5
    page = await events(devnet, {"startLedger": 2, "endLedger": 4})
    assert [e["ledger"] for e in page["events"]] == [2, 3]
    assert page["cursor"] == end_of_ledger(3)
    assert (page["latestLedger"], page["oldestLedger"]) == (5, 1)


async def test_event_shape_matches_stellar_rpc(devnet: Devnet) -> None:
    receipt = devnet.chain.execute("create_stream", CREATE)
    page = await events(devnet, {"startLedger": 1})
    (event,) = page["events"]
    assert list(event) == [
        "type",
        "ledger",
        "ledgerClosedAt",
        "contractId",
        "id",
        "operationIndex",
        "transactionIndex",
        "txHash",
        "inSuccessfulContractCall",
        "topic",
        "value",
    ]
    assert event["id"] == receipt.events[0][0]
    assert (event["contractId"], event["txHash"], event["ledger"]) == (
        DEFAULT_CONTRACT_ID,
        receipt.tx_hash,
        2,
    )
    assert (event["transactionIndex"], event["operationIndex"]) == (1, 0)
    assert event["ledgerClosedAt"].endswith("Z")
    parsed = GetEventsResponse.model_validate(page)
    assert parsed.latest_Ledger_close_time == receipt.closed_at
    decoded: Any = scval.to_native(parsed.events[0].value)
    assert decoded["deposited_amount"] == 1000


async def test_xdr_format_json_sends_topic_and_value_as_xdr_json(devnet: Devnet) -> None:
    devnet.chain.execute("create_stream", CREATE)
    base64_event = (await events(devnet, {"startLedger": 1}))["events"][0]
    (event,) = (await events(devnet, {"startLedger": 1, "xdrFormat": "json"}))["events"]
    assert "topic" not in event and "value" not in event
    assert {k: v for k, v in event.items() if k not in ("topicJson", "valueJson")} == {
        k: v for k, v in base64_event.items() if k not in ("topic", "value")}
    assert event["topicJson"] == [{"symbol": "stream_created"}, {"u64": "1"}]
    fields = {entry["key"]["symbol"]: entry["val"] for entry in event["valueJson"]["map"]}
    assert fields["deposited_amount"] == {"i128": "1000"}
    assert fields["token_address"] == {"address": CREATE["token_address"]}
    assert list(fields) == sorted(fields), "map keys in the contract's (sorted) order"


async def test_limit_default_maximum_and_errors(devnet: Devnet) -> None:
    fill(devnet, ledgers=1, creates_per_ledger=150)
    assert len((await events(devnet, {"startLedger": 1}))["events"]) == 100
    assert len((await events(devnet, {"startLedger": 1, "pagination": {"limit": 10000}}))["events"]) == 150
    cases: list[tuple[dict[str, Any], str]] = [
        ({"startLedger": 1, "pagination": {"limit": 10001}}, "limit must not exceed 10000"),
        ({"startLedger": 1, "pagination": {"cursor": end_of_ledger(1)}}, "cannot both be set"),
        ({}, "startLedger must be positive"),
        ({"pagination": {"cursor": "12-ab"}}, "invalid event id 12-ab"),
        ({"startLedger": 1, "xdrFormat": "xml"}, "xdrFormat"),
        ({"startLedger": 1, "filters": [{}] * 6}, "maximum 5 filters per request"),
        ({"startLedger": 1, "filters": [{"type": "diagnostic"}]}, "filter 1 invalid: filter type invalid"),
        (
            {"startLedger": 1, "filters": [{"contractIds": [SENDER]}]},
            "filter 1 invalid: contract ID 1 invalid",
        ),
        ({"startLedger": 1, "filters": [{"topics": [["**", "*"]]}]}, "only allowed as the last segment"),
        ({"startLedger": 1, "filters": [{"topics": [["*"] * 5]}]}, "more than 4 segments"),
        ({"startLedger": 1, "filters": [{"topics": [["not-xdr"]]}]}, "segment 1 invalid"),
    ]
    for params, message in cases:
        answer = await rpc(devnet, "getEvents", params)
        assert answer["error"]["code"] == -32602, params
        assert message in answer["error"]["message"], answer


async def test_start_outside_retention_is_the_stellar_rpc_error() -> None:
    with running_devnet(retention=5) as devnet:
        fill(devnet, ledgers=10, creates_per_ledger=1)
        for start in (1, 12):
            answer = await rpc(devnet, "getEvents", {"startLedger": start})
            assert answer["error"] == {
                "code": -32600,
                "message": "startLedger must be within the ledger range: 7 - 11",
            }
        old_cursor = end_of_ledger(3)
        answer = await rpc(devnet, "getEvents", {"pagination": {"cursor": old_cursor}})
        assert answer["error"]["code"] == -32600
        page = await events(devnet, {"startLedger": 7})
        assert [e["ledger"] for e in page["events"]] == [7, 8, 9, 10, 11]


async def test_get_ledgers_has_the_stellar_rpc_shape_and_pages_by_cursor() -> None:
    with running_devnet(retention=5) as devnet:
        fill(devnet, ledgers=10, creates_per_ledger=1)
        answer = await rpc(devnet, "getLedgers", {"startLedger": 8, "pagination": {"limit": 2}})
        page = GetLedgersResponse.model_validate(answer["result"])
        assert [ledger.sequence for ledger in page.ledgers] == [8, 9]
        assert (page.latest_ledger, page.oldest_ledger, page.cursor) == (11, 7, "9")
        # close times: strings per ledger, numbers for the range (as stellar-rpc's types declare them)
        assert answer["result"]["ledgers"][0]["ledgerCloseTime"] == str(devnet.chain.ledger(8).close_time)
        assert answer["result"]["latestLedgerCloseTime"] == devnet.chain.latest.close_time
        for info in page.ledgers:
            ledger = devnet.chain.ledger(info.sequence)
            entry = xdr.LedgerHeaderHistoryEntry.from_xdr(info.header_xdr)
            assert (info.hash, entry.hash.hash.hex(), entry.header.ledger_seq.uint32) == (
                ledger.hash, ledger.hash, info.sequence)
            assert entry.header.previous_ledger_hash.hash.hex() == ledger.previous_hash
            meta = xdr.LedgerCloseMeta.from_xdr(info.metadata_xdr)
            assert meta.v0.ledger_header.hash.hash.hex() == ledger.hash
        following = (await rpc(devnet, "getLedgers", {"pagination": {"cursor": page.cursor}}))["result"]
        assert [ledger["sequence"] for ledger in following["ledgers"]] == [10, 11]  # 50 by default: all that is left
        assert following["cursor"] == "11"


async def test_get_ledgers_errors_are_stellar_rpc_s() -> None:
    with running_devnet(retention=5) as devnet:
        fill(devnet, ledgers=10, creates_per_ledger=0)
        for start in (3, 12, 0):
            assert (await rpc(devnet, "getLedgers", {"startLedger": start}))["error"] == {
                "code": -32600,
                "message": f"start ledger ({start}) must be between the oldest ledger: 7 and the latest ledger: 11 "
                           "for this rpc instance",
            }
        errors = [
            ({"startLedger": 8, "pagination": {"cursor": "8"}}, -32600,
             "startLedger (8) and cursor (8) cannot both be set"),
            ({"startLedger": 8, "pagination": {"limit": 201}}, -32600, "limit must not exceed 200"),
            ({"startLedger": 8, "xdrFormat": "hex"}, -32600,
             "got 'hex': expected base64, json for optional 'xdrFormat'"),
            ({"pagination": {"cursor": "11"}}, -32602,
             "cursor ('11') must be between the oldest ledger: 7 and the latest ledger: 11 for this rpc instance"),
            ({"pagination": {"cursor": "x"}}, -32602, 'strconv.ParseUint: parsing "x": invalid syntax'),
        ]
        for params, code, message in errors:
            assert (await rpc(devnet, "getLedgers", params))["error"] == {"code": code, "message": message}, params


async def test_a_node_behind_its_peers_answers_every_method_from_its_newest_ledger(devnet: Devnet) -> None:
    fill(devnet, ledgers=6, creates_per_ledger=0)
    devnet.faults.behind_ledgers = 3
    devnet.faults.inject("behind", 4)
    assert (await rpc(devnet, "getLatestLedger"))["result"]["sequence"] == 4
    assert (await rpc(devnet, "getHealth"))["result"]["latestLedger"] == 4
    assert (await rpc(devnet, "getLedgers", {"startLedger": 5}))["error"]["code"] == -32600
    assert (await rpc(devnet, "getEvents", {"startLedger": 5}))["error"]["message"] == (
        "startLedger must be within the ledger range: 1 - 4")
    assert (await rpc(devnet, "getLatestLedger"))["result"]["sequence"] == 7, "the next request reaches another node"


async def test_filters_select_by_contract_topic_and_type(devnet: Devnet) -> None:
    devnet.chain.submit("create_stream", CREATE)
    devnet.chain.inject_event(
        StreamPaused(stream_id=1, sender=SENDER, paused_at=5), contract_id=OTHER_CONTRACT
    )
    devnet.chain.close_ledger()
    devnet.chain.execute("pause_stream", {"sender": SENDER, "stream_id": 1})

    async def contract_ids(filters: list[dict[str, Any]]) -> list[tuple[str, Any]]:
        page = await events(devnet, {"startLedger": 1, "filters": filters})
        return [(e["contractId"], scval.to_native(e["topic"][0])) for e in page["events"]]

    assert await contract_ids([]) == [(TOKEN, "transfer"), (DEFAULT_CONTRACT_ID, "stream_created"),
                                      (OTHER_CONTRACT, "stream_paused"), (DEFAULT_CONTRACT_ID, "stream_paused")]
    ours = await contract_ids([{"type": "contract", "contractIds": [DEFAULT_CONTRACT_ID]}])
    assert ours == [(DEFAULT_CONTRACT_ID, "stream_created"), (DEFAULT_CONTRACT_ID, "stream_paused")]
    paused = encode_topic(StreamPaused(stream_id=1, sender=SENDER, paused_at=0))
    assert await contract_ids([{"topics": [[paused[0], "*"]]}]) == [
        (OTHER_CONTRACT, "stream_paused"),
        (DEFAULT_CONTRACT_ID, "stream_paused"),
    ]
    assert len(await contract_ids([{"topics": [[paused[0]]]}])) == 0  # exact length without "**"
    assert len(await contract_ids([{"topics": [[paused[0], "**"]]}])) == 2
    assert len(await contract_ids([{"topics": [["*", paused[1], "**"]]}])) == 3
    assert await contract_ids([{"type": "system"}]) == []
    either: list[dict[str, Any]] = [
        {"contractIds": [OTHER_CONTRACT]},
        {"topics": [[encode_topic_symbol("stream_created"), "**"]]},
    ]
    assert len(await contract_ids(either)) == 2


def encode_topic_symbol(name: str) -> str:
    return scval.to_symbol(name).to_xdr()  # type: ignore[no-any-return]


async def test_injected_malformed_events_are_served_verbatim(devnet: Devnet) -> None:
    devnet.chain.inject_raw_event(["AAAADwAAAAd1bmtub3duAA==", "!!"], "bm90IHhkcg==")
    devnet.chain.inject_raw_event([], "AAAAAQAAAAE=")
    devnet.chain.close_ledger()
    served = (await events(devnet, {"startLedger": 1}))["events"]
    assert served[0]["topic"] == ["AAAADwAAAAd1bmtub3duAA==", "!!"]
    assert served[0]["value"] == "bm90IHhkcg=="
    assert "topic" not in served[1]


async def test_other_methods_have_the_stellar_rpc_shapes(devnet: Devnet) -> None:
    devnet.chain.close_ledger()
    latest = GetLatestLedgerResponse.model_validate((await rpc(devnet, "getLatestLedger"))["result"])
    assert latest.sequence == 2 and len(latest.id) == 64 and latest.protocol_version == 23
    assert latest.close_time == devnet.chain.latest.close_time
    raw_health = (await rpc(devnet, "getHealth"))["result"]
    health = GetHealthResponse.model_validate(raw_health)
    assert (health.status, health.latest_ledger, health.oldest_ledger) == ("healthy", 2, 1)
    # since stellar-rpc 27.1, as strings like getEvents' close times
    assert raw_health["oldestLedgerCloseTime"] == str(devnet.chain.oldest.close_time)
    assert raw_health["latestLedgerCloseTime"] == str(devnet.chain.latest.close_time)
    assert health.ledger_retention_window == 120960
    network = await rpc(devnet, "getNetwork")
    assert network["result"] == {"passphrase": DEFAULT_PASSPHRASE, "protocolVersion": 23}
    assert GetNetworkResponse.model_validate(network["result"]).friendbot_url is None


async def test_protocol_errors(devnet: Devnet) -> None:
    assert (await rpc(devnet, "sendTransaction", {}))["error"]["code"] == -32601
    async with http_client() as client:
        response = await client.post(devnet.url, content=b"{nope")
        assert response.json()["error"]["code"] == -32700
        response = await client.post(devnet.url, json={"id": 1, "method": "getHealth"})
        assert response.json()["error"]["code"] == -32600


async def test_faults_apply_to_the_next_requests_in_order(devnet: Devnet) -> None:
    devnet.faults.timeout_seconds = 0.5
    for kind in ("http500", "rpc-32001", "garbage", "truncated", "timeout"):
        devnet.faults.inject(kind)
    body = {"jsonrpc": "2.0", "id": 1, "method": "getHealth"}
    async with http_client(timeout=0.2) as client:
        assert (await client.post(devnet.url, json=body)).status_code == 500
        assert (await client.post(devnet.url, json=body)).json()["error"]["code"] == -32001
        garbage = await client.post(devnet.url, json=body)
        assert garbage.status_code == 200
        with pytest.raises(ValueError):
            garbage.json()
        truncated = await client.post(devnet.url, json=body)
        assert truncated.text.startswith('{"jsonrpc":"2.0"')
        with pytest.raises(ValueError):
            truncated.json()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(devnet.url, json=body)
        assert (await client.post(devnet.url, json=body)).json()["result"]["status"] == "healthy"
    with pytest.raises(ValueError, match="unknown fault"):
        devnet.faults.inject("slow")


async def test_invoke_answers_once_the_ledger_closes() -> None:
    with running_devnet(ledger_interval=0.05) as devnet:
        async with http_client(timeout=5) as client:
            created = await client.post(
                f"{devnet.url}/invoke",
                json={"function": "create_stream", "args": {**CREATE, "amount": "5000"}},
            )
            assert created.status_code == 200, created.text
            body = created.json()
            assert body["result"] == "1"
            assert [e["type"] for e in body["events"]] == ["stream.created"]
            assert body["events"][0]["data"]["deposited_amount"] == "5000"
            page = await events(devnet, {"startLedger": body["ledger"], "endLedger": body["ledger"] + 1})
            assert [e["id"] for e in page["events"]] == [body["events"][0]["id"]]
            assert page["events"][0]["txHash"] == body["txHash"]

            rejected = await client.post(
                f"{devnet.url}/invoke",
                json={"function": "withdraw", "args": {"recipient": SENDER, "stream_id": 1}},
            )
            assert rejected.status_code == 400
            assert rejected.json()["name"] == "Unauthorized"
            assert (await client.post(f"{devnet.url}/invoke", content=b"[")).status_code == 400

            state = (await client.get(f"{devnet.url}/state")).json()
            assert state["streams"][0]["deposited_amount"] == "5000"
            assert state["contractId"] == DEFAULT_CONTRACT_ID


async def test_ledgers_close_on_their_own_with_traffic() -> None:
    with running_devnet(ledger_interval=0.02, traffic_per_ledger=5, seed=3) as devnet:
        await asyncio.sleep(0.3)
        assert devnet.chain.latest.sequence > 5
        assert devnet.chain.event_count > 10
        assert devnet.chain.failed_transactions == 0


@pytest.mark.slow
async def test_a_large_history_pages_through_completely() -> None:
    with running_devnet() as devnet:
        devnet.chain.generate_history(25_000, traffic=devnet.traffic, tx_per_ledger=200)
        expected = [e.id for e in devnet.chain.scan(after="", end_ledger=10**9, limit=10**9)]
        seen: list[str] = []
        params: dict[str, Any] = {"startLedger": 1, "pagination": {"limit": 10000}, "filters": []}
        while True:
            page = await events(devnet, params)
            seen += [e["id"] for e in page["events"]]
            if not page["events"]:
                break
            params = {"pagination": {"cursor": page["cursor"], "limit": 10000}, "filters": []}
        assert seen == expected


async def test_flowfi_events_keep_the_ids_the_token_transfers_before_them_leave(devnet: Devnet) -> None:
    devnet.chain.execute("initialize", {"admin": SENDER, "treasury": RECIPIENT, "fee_rate_bps": 100})
    usdc = devnet.chain.tokens.defaults[0]
    receipt = devnet.chain.execute("create_stream", {**CREATE, "token_address": usdc.contract_id, "amount": 10_000})
    ours = (await events(devnet, {"startLedger": receipt.ledger}))["events"]
    assert [e["id"] for e in ours] == [eid for eid, _ in receipt.events]
    assert [e["id"][-1] for e in ours] == ["2", "3"], "event indexes 0 and 1 are the token's"
    theirs = (await events(devnet, {"startLedger": receipt.ledger,
                                    "filters": [{"contractIds": [usdc.contract_id]}]}))["events"]
    assert [e["id"] for e in theirs] == [eid for eid, _ in receipt.transfers]
    assert [scval.to_native(xdr.SCVal.from_xdr(segment)) for segment in theirs[1]["topic"]][::3] == [
        "transfer", f"USDC:{usdc.issuer}"]
    _, source, destination, _ = (scval.to_native(xdr.SCVal.from_xdr(segment)) for segment in theirs[1]["topic"])
    assert (source.address, destination.address) == (DEFAULT_CONTRACT_ID, RECIPIENT)
    assert scval.to_native(xdr.SCVal.from_xdr(theirs[1]["value"])) == 100
    assert theirs[1]["txHash"] == ours[0]["txHash"] == receipt.tx_hash


async def test_the_devnet_documents_upgrades_and_allowances_over_http() -> None:
    with running_devnet(ledger_interval=0.05, build="8723543") as devnet:
        async with http_client(timeout=5) as client:
            listed = (await client.get(f"{devnet.url}/invoke")).json()
            assert listed["build"] == "8723543"
            assert listed["functions"]["8723543"]["create_stream"] == {
                "sender": "Address", "recipient": "Address", "token_address": "Address", "amount": "i128",
                "duration": "u64"}
            assert listed["functions"]["c9f5d2e"]["create_conditional_stream"]["milestones"] == (
                "Vec<ConditionalMilestone>")
            assert len(listed["functions"]["c9f5d2e"]) == len(devnet.chain.contract.functions) + 20
            refused = await client.post(f"{devnet.url}/invoke", json={"function": "close_stream", "args": {}})
            assert (refused.status_code, refused.json()["name"]) == (400, "InvalidInvocation")
            await client.post(f"{devnet.url}/invoke", json={"function": "initialize", "args": {
                "admin": SENDER, "treasury": RECIPIENT, "fee_rate_bps": 0}})
            await client.post(f"{devnet.url}/invoke", json={"function": "create_stream", "args": CREATE})
            state = (await client.get(f"{devnet.url}/state")).json()
            assert (state["build"], len(state["streams"][0]), len(state["config"])) == ("8723543", 13, 3)
            assert (await client.post(f"{devnet.url}/upgrade", json={"build": "v9"})).status_code == 400
            upgraded = await client.post(f"{devnet.url}/upgrade", json={"build": "c9f5d2e"})
            assert upgraded.status_code == 200, upgraded.text
            assert [e["type"] for e in upgraded.json()["events"]] == ["protocol.contract_upgraded"]
            again = await client.post(f"{devnet.url}/upgrade", json={"build": "c9f5d2e"})
            assert (again.status_code, again.json()["name"]) == (400, "InvalidInvocation")
            allowance = {"sender": SENDER, "recipient": RECIPIENT, "token_address": TOKEN, "duration": 60}
            approved = await client.post(f"{devnet.url}/allowance", json={"token": TOKEN, "owner": SENDER,
                                                                         "amount": "0"})
            assert approved.json() == {"token": TOKEN, "owner": SENDER, "spender": DEFAULT_CONTRACT_ID, "amount": "0"}
            locked = await client.post(f"{devnet.url}/invoke", json={"function": "create_allowance_stream",
                                                                     "args": allowance})
            assert (locked.json()["name"], locked.json()["code"]) == ("AllowanceLocked", 33)
            bad = await client.post(f"{devnet.url}/allowance", json={"token": SENDER, "owner": SENDER, "amount": 1})
            assert bad.status_code == 400 and "token" in bad.json()["error"]
            await client.post(f"{devnet.url}/invoke", json={"function": "pause_stream",
                                                           "args": {"sender": SENDER, "stream_id": 1}})
            state = (await client.get(f"{devnet.url}/state")).json()
            assert (state["build"], len(state["streams"][0]), len(state["config"])) == ("c9f5d2e", 18, 3)
            assert state["streams"][0]["schedule"] == ["Linear"] and state["contractVersion"] is None
            assert {t["symbol"] for t in state["tokens"]} >= {"USDC", "EURC"}
