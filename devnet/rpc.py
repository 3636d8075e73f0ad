"""Stellar RPC's JSON-RPC 2.0 over HTTP, answered from the local chain (stellar/stellar-rpc shapes).

POST /  getEvents (xdrFormat base64 or json), getLedgers (base64), getLedgerEntries, getLatestLedger,
getHealth, getNetwork (protocol 23 response shapes, and getHealth's close times of stellar-rpc 27.1). getEvents
follows stellar-rpc's cursor rules: results strictly after the cursor; when a page is full the cursor
is its last event id, otherwise it is the end of the scanned window (the largest cursor in ledger
end - 1), so an empty page still moves the client forward. The window is at most 10000 ledgers and ends
before `endLedger` and after the latest ledger. getLedgerEntries answers as stellar-rpc v28 does: at
most 200 base64 LedgerKeys, entries in request order with their LedgerEntryData, lastModifiedLedgerSeq
and liveUntilLedgerSeq (0 for an archived entry), missing keys left out; it knows the FlowFi contract's
instance and its persistent Stream(id) entries, and the tokens' instances. getLedgers answers as
stellar-rpc v28 does without a data store: from `startLedger` (or after `pagination.cursor`, a ledger
sequence) at most `pagination.limit` ledgers (50 by default, 200 at most) of those kept, each with its hash,
sequence, close time (a string), headerXdr (a LedgerHeaderHistoryEntry) and metadataXdr (a LedgerCloseMeta
without transactions); xdrFormat "json" is refused (the devnet has no XDR-JSON of headers and metadata).
Errors use stellar-rpc's codes and texts.

POST /invoke  {"function": ..., "args": {...}} calls the contract in a transaction of the next ledger
and answers once that ledger has closed: 200 {"txHash", "ledger", "events", "transfers", "result"}, or
400 {"error", "name", "code"} when the call fails: `name` is the contract's StreamError variant and
`code` its number, or "Trap" (the contract panicked) or "InvalidInvocation" (no such function, or
arguments of the wrong shape), both without a code.
GET /invoke   every function of each build with its parameters and their types (`devnet.calls`).
GET /state    the contract's storage as it is kept (each stream in the layout of the build that saved
              it), the build running, and the tokens; amounts as decimal strings.
POST /upgrade {"build": "c9f5d2e"} switches a running 8723543 contract to c9f5d2e in a transaction of
              the next ledger (a devnet operator's action; the real 8723543 cannot be upgraded).
POST /allowance {"token", "owner", "amount"}: what `owner` allows the contract to spend of `token`
              from now on (every account allows an unlimited amount until told otherwise).

`Faults` queues failures for the next JSON-RPC requests, one per request: "timeout" (answer after
`timeout_seconds`), "http500", "rpc-32001", "garbage" (a non-JSON 200 body), "truncated" (half a body),
and what real deployments do: "behind" (answered by a node `behind_ledgers` ledgers, one by default,
behind its peers, as a load-balanced endpoint may: getEvents, getLedgers, getLatestLedger and getHealth
see its newest ledger), "db-read-failed" (the server's database read failed), "unfiltered" (getEvents
ignores its filters).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from stellar_sdk import StrKey, xdr

from devnet import calls, entries
from devnet.chain import PROTOCOL_VERSION, Chain, Ledger, Receipt, StoredEvent
from devnet.terms import I128_MAX, InvalidInvocation, milestone_json
from devnet.xdr import scval_json
from indexer import ids

LEDGER_SCAN_LIMIT = 10_000
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
MAX_FILTERS = 5
MAX_CONTRACT_IDS = 5
MAX_TOPICS = 5
MAX_SEGMENTS = 4
MAX_LEDGER_KEYS = 200
MAX_LEDGERS_LIMIT = 200  # stellar-rpc's max-ledgers-limit and default-ledgers-limit
DEFAULT_LEDGERS_LIMIT = 50
EXT_V0 = xdr.LedgerEntryExt(0)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_TIMEOUT = -32001

FAULT_KINDS = ("timeout", "http500", "rpc-32001", "garbage", "truncated", "behind", "db-read-failed", "unfiltered")


class Faults:
    """Failures to apply to the next JSON-RPC requests, in order, one per request."""

    def __init__(self, timeout_seconds: float = 15.0, behind_ledgers: int = 1) -> None:
        self.timeout_seconds = timeout_seconds
        self.behind_ledgers = behind_ledgers
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()

    def inject(self, kind: str, count: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._queue.extend([kind] * count)

    def take(self) -> str | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """Segments to match, None for "*"; `flexible` when the filter ended with "**"."""

    segments: tuple[str | None, ...]
    flexible: bool

    def matches(self, topic: tuple[str, ...]) -> bool:
        if len(topic) < len(self.segments) or (not self.flexible and len(topic) != len(self.segments)):
            return False
        return all(want is None or want == got for want, got in zip(self.segments, topic, strict=False))


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: frozenset[str]
    contract_ids: frozenset[str]
    topics: tuple[TopicFilter, ...]

    def matches(self, event: StoredEvent) -> bool:
        if self.types and "contract" not in self.types:
            return False
        if self.contract_ids and event.contract_id not in self.contract_ids:
            return False
        return not self.topics or any(t.matches(event.topic) for t in self.topics)


def _canonical_scval(segment: str) -> str:
    value = xdr.SCVal.from_xdr(segment)
    return value.to_xdr()  # type: ignore[no-any-return]


def _parse_topic(raw: Any) -> TopicFilter:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise ValueError("topic must be a list of strings")
    if not raw:
        raise ValueError("topic must have at least 1 segment")
    flexible = raw[-1] == "**"
    segments = raw[:-1] if flexible else raw
    for i, segment in enumerate(segments):
        if segment == "**":
            raise ValueError(f"segment {i + 1} invalid: wildcard '**' is only allowed as the last segment")
    if len(segments) > MAX_SEGMENTS:
        raise ValueError(f"topic cannot have more than {MAX_SEGMENTS} segments")
    parsed: list[str | None] = []
    for i, segment in enumerate(segments):
        if segment == "*":
            parsed.append(None)
            continue
        try:
            parsed.append(_canonical_scval(segment))
        except Exception:
            raise ValueError(f"segment {i + 1} invalid: not a base64 XDR ScVal") from None
    return TopicFilter(tuple(parsed), flexible)


def _parse_filter(raw: Any) -> EventFilter:
    if not isinstance(raw, dict):
        raise ValueError("filter must be an object")
    type_field = raw.get("type") or ""
    if not isinstance(type_field, str):
        raise ValueError("type must be a string")
    types = frozenset(t for t in type_field.split(",") if t)
    if types - {"system", "contract"}:
        raise ValueError("filter type invalid: if set, type must be either 'system' or 'contract'")
    contract_ids = raw.get("contractIds") or []
    if not isinstance(contract_ids, list):
        raise ValueError("contractIds must be a list")
    if len(contract_ids) > MAX_CONTRACT_IDS:
        raise ValueError(f"maximum {MAX_CONTRACT_IDS} contract IDs per filter")
    topics = raw.get("topics") or []
    if not isinstance(topics, list):
        raise ValueError("topics must be a list")
    if len(topics) > MAX_TOPICS:
        raise ValueError(f"maximum {MAX_TOPICS} topics per filter")
    for i, contract_id in enumerate(contract_ids):
        if not isinstance(contract_id, str) or not StrKey.is_valid_contract(contract_id):
            raise ValueError(f"contract ID {i + 1} invalid")
    parsed_topics = []
    for i, topic in enumerate(topics):
        try:
            parsed_topics.append(_parse_topic(topic))
        except ValueError as exc:
            raise ValueError(f"topic {i + 1} invalid: {exc}") from None
    return EventFilter(types, frozenset(contract_ids), tuple(parsed_topics))


def _uint(source: dict[str, Any], name: str) -> int:
    value = source.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise _invalid(f"invalid parameters: {name} must be an unsigned 32-bit integer")
    return value


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class RpcMethods:
    """The JSON-RPC methods; each returns its `result` already serialized."""

    def __init__(self, chain: Chain, faults: Faults) -> None:
        self.chain = chain
        self.faults = faults
        self._header_cache: tuple[str, str, str] = ("", "", "")

    def table(self) -> dict[str, Callable[[Any, str | None], bytes]]:
        return {
            "getEvents": self.get_events,
            "getLedgers": self.get_ledgers,
            "getLedgerEntries": self.get_ledger_entries,
            "getLatestLedger": self.get_latest_ledger,
            "getHealth": self.get_health,
            "getNetwork": self.get_network,
        }

    def get_events(self, params: Any, fault: str | None = None) -> bytes:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _invalid("invalid parameters: expected an object")
        xdr_format = params.get("xdrFormat") or "base64"
        if xdr_format not in ("base64", "json"):
            raise _invalid(f"expected 'base64' or 'json' for 'xdrFormat', got '{xdr_format}'")
        start_ledger = _uint(params, "startLedger")
        end_ledger = _uint(params, "endLedger")
        pagination = params.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise _invalid("invalid parameters: pagination must be an object")
        limit = _uint(pagination, "limit")
        cursor = pagination.get("cursor")
        if cursor is not None:
            if not isinstance(cursor, str):
                raise _invalid("invalid parameters: cursor must be a string")
            try:
                cursor_ledger = ids.parse(cursor)[0]
            except ValueError as exc:
                raise _invalid(str(exc)) from None
            if start_ledger or end_ledger:
                raise _invalid("ledger ranges and cursor cannot both be set")
        elif start_ledger <= 0:
            raise _invalid("startLedger must be positive")
        if limit > MAX_LIMIT:
            raise _invalid(f"limit must not exceed {MAX_LIMIT}")
        raw_filters = params.get("filters") or []
        if not isinstance(raw_filters, list):
            raise _invalid("invalid parameters: filters must be a list")
        if len(raw_filters) > MAX_FILTERS:
            raise _invalid(f"maximum {MAX_FILTERS} filters per request")
        filters = []
        for i, raw in enumerate(raw_filters):
            try:
                filters.append(_parse_filter(raw))
            except ValueError as exc:
                raise _invalid(f"filter {i + 1} invalid: {exc}") from None

        limit = limit or DEFAULT_LIMIT
        if fault == "db-read-failed":
            raise RpcError(INVALID_REQUEST, "context deadline exceeded\ndb read failed for requested parameter")
        if fault == "unfiltered":
            filters = []
        with self.chain.lock:
            oldest, latest = self._range(fault)
            if cursor is not None:
                start_ledger, after = cursor_ledger, cursor
            else:
                after = ids.before_ledger(start_ledger)
            window_end = min(start_ledger + LEDGER_SCAN_LIMIT, latest.sequence + 1)
            if end_ledger:
                window_end = min(end_ledger, window_end)
            if not oldest.sequence <= start_ledger <= latest.sequence:
                raise RpcError(
                    INVALID_REQUEST,
                    f"startLedger must be within the ledger range: {oldest.sequence} - {latest.sequence}",
                )
            match = None
            if filters:
                match = lambda event: any(f.matches(event) for f in filters)  # noqa: E731
            found = self.chain.scan(after=after, end_ledger=window_end, limit=limit, match=match)
        next_cursor = found[-1].id if len(found) == limit else ids.end_of_ledger(window_end - 1)
        encoded = (event.json for event in found) if xdr_format == "base64" else (_as_json_format(e) for e in found)
        return b"".join(
            (
                b'{"events":[',
                b",".join(encoded),
                b'],"cursor":"',
                next_cursor.encode(),
                b'","latestLedger":%d,"oldestLedger":%d' % (latest.sequence, oldest.sequence),
                b',"latestLedgerCloseTime":"%d","oldestLedgerCloseTime":"%d"}'
                % (latest.close_time, oldest.close_time),
            )
        )

    def _range(self, fault: str | None) -> tuple[Ledger, Ledger]:
        """The oldest and newest ledgers the answering node has (a lagging one lacks the newest)."""
        oldest, latest = self.chain.ledger_range()
        if fault == "behind":
            latest = self.chain.ledger(max(latest.sequence - self.faults.behind_ledgers, oldest.sequence))
        return oldest, latest

    def get_ledgers(self, params: Any, fault: str | None = None) -> bytes:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _invalid("invalid parameters: expected an object")
        start_ledger = _uint(params, "startLedger")
        pagination = params.get("pagination")
        if pagination is not None and not isinstance(pagination, dict):
            raise _invalid("invalid parameters: pagination must be an object")
        cursor = (pagination or {}).get("cursor") or ""
        if not isinstance(cursor, str):
            raise _invalid("invalid parameters: cursor must be a string")
        limit = _uint(pagination or {}, "limit")
        xdr_format = params.get("xdrFormat") or "base64"
        with self.chain.lock:
            oldest, latest = self._range(fault)
            # stellar-rpc joins what is wrong with the pagination and with the format, one per line
            problems = []
            out_of_range = (f"start ledger ({start_ledger}) must be between the oldest ledger: {oldest.sequence} and "
                            f"the latest ledger: {latest.sequence} for this rpc instance")
            in_range = oldest.sequence <= start_ledger <= latest.sequence
            if pagination is not None:
                if cursor and start_ledger:
                    problems.append(f"startLedger ({start_ledger}) and cursor ({cursor}) cannot both be set")
                elif not cursor and not in_range:
                    problems.append(out_of_range)
                elif limit > MAX_LEDGERS_LIMIT:
                    problems.append(f"limit must not exceed {MAX_LEDGERS_LIMIT}")
            elif not in_range:
                problems.append(out_of_range)
            if xdr_format not in ("base64", "json"):
                problems.append(f"got '{xdr_format}': expected base64, json for optional 'xdrFormat'")
            if problems:
                raise RpcError(INVALID_REQUEST, "\n".join(problems))
            if xdr_format == "json":
                raise _invalid("the local network serves getLedgers with xdrFormat base64 only")
            start = start_ledger
            if cursor:
                if not cursor.isdigit() or int(cursor) >= 2**32:
                    reason = "invalid syntax" if not cursor.isdigit() else "value out of range"
                    raise _invalid(f'strconv.ParseUint: parsing "{cursor}": {reason}')
                start = int(cursor) + 1
                if not oldest.sequence <= start <= latest.sequence:
                    raise _invalid(f"cursor ('{cursor}') must be between the oldest ledger: {oldest.sequence} and the "
                                   f"latest ledger: {latest.sequence} for this rpc instance")
            end = min(start + (limit or DEFAULT_LEDGERS_LIMIT) - 1, latest.sequence)
            ledgers = [self.chain.ledger(sequence) for sequence in range(start, end + 1)]
        found = [{"hash": ledger.hash, "sequence": ledger.sequence, "ledgerCloseTime": str(ledger.close_time),
                  "headerXdr": ledger.history_entry().to_xdr(), "metadataXdr": ledger.metadata_xdr()}
                 for ledger in ledgers]
        next_cursor = str(ledgers[-1].sequence) if ledgers else cursor or str(start - 1)
        return _dumps({"ledgers": found, "latestLedger": latest.sequence, "latestLedgerCloseTime": latest.close_time,
                       "oldestLedger": oldest.sequence, "oldestLedgerCloseTime": oldest.close_time,
                       "cursor": next_cursor})

    def get_ledger_entries(self, params: Any, fault: str | None = None) -> bytes:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _invalid("invalid parameters: expected an object")
        xdr_format = params.get("xdrFormat") or "base64"
        if xdr_format not in ("base64", "json"):
            raise _invalid(f"got '{xdr_format}': expected base64, json for optional 'xdrFormat'")
        raw_keys = params.get("keys") or []
        if not isinstance(raw_keys, list):
            raise _invalid("invalid parameters: keys must be a list of base64 LedgerKeys")
        if len(raw_keys) > MAX_LEDGER_KEYS:
            raise _invalid(f"key count ({len(raw_keys)}) exceeds maximum supported ({MAX_LEDGER_KEYS})")
        keys = []
        for index, raw in enumerate(raw_keys):
            try:
                key = xdr.LedgerKey.from_xdr(raw)
            except Exception:
                raise _invalid(f"cannot unmarshal key value {raw} at index {index}") from None
            if key.type == xdr.LedgerEntryType.TTL:
                raise _invalid("ledger ttl entries cannot be queried directly")
            keys.append(key)
        if not keys:
            raise RpcError(INTERNAL_ERROR, "could not query captive core: no keys specified in request")
        canonical = [key.to_xdr() for key in keys]
        if len(set(canonical)) < len(canonical):
            # stellar-core refuses a query that names a key twice
            raise RpcError(INTERNAL_ERROR, "could not query captive core: http request failed with non-200 status "
                                           "code (400)")
        found = []
        with self.chain.lock:
            latest = self.chain.latest.sequence
            for key, encoded in zip(keys, canonical, strict=True):
                entry = self.chain.ledger_entry(key)
                if entry is None:
                    continue
                data, last_modified, live_until = entry
                if xdr_format == "json":
                    body: dict[str, Any] = {"keyJson": entries.key_json(key), "dataJson": entries.data_json(data),
                                            "extJson": "v0"}
                else:
                    body = {"key": encoded, "xdr": data.to_xdr(), "extXdr": EXT_V0.to_xdr()}
                body.update(lastModifiedLedgerSeq=last_modified, liveUntilLedgerSeq=live_until)
                found.append(body)
        return _dumps({"entries": found, "latestLedger": latest})

    def get_latest_ledger(self, params: Any, fault: str | None = None) -> bytes:
        latest = self._range(fault)[1]
        if self._header_cache[0] != latest.hash:
            self._header_cache = (latest.hash, latest.header_xdr(), latest.metadata_xdr())
        _, header, metadata = self._header_cache
        return _dumps(
            {
                "id": latest.hash,
                "protocolVersion": PROTOCOL_VERSION,
                "sequence": latest.sequence,
                "closeTime": str(latest.close_time),
                "headerXdr": header,
                "metadataXdr": metadata,
            }
        )

    def get_health(self, params: Any, fault: str | None = None) -> bytes:
        oldest, latest = self._range(fault)
        return _dumps(
            {
                "status": "healthy",
                "latestLedger": latest.sequence,
                "latestLedgerCloseTime": str(latest.close_time),
                "oldestLedger": oldest.sequence,
                "oldestLedgerCloseTime": str(oldest.close_time),
                "ledgerRetentionWindow": self.chain.retention,
            }
        )

    def get_network(self, params: Any, fault: str | None = None) -> bytes:
        return _dumps({"passphrase": self.chain.passphrase, "protocolVersion": PROTOCOL_VERSION})


def _as_json_format(event: StoredEvent) -> bytes:
    """An event as getEvents sends it with xdrFormat "json": topicJson and valueJson for topic and value."""
    body = json.loads(event.json)
    topic = body.pop("topic", None)
    value = body.pop("value")
    if topic:
        body["topicJson"] = [scval_json(segment) for segment in topic]
    body["valueJson"] = scval_json(value)
    return _dumps(body)


def _error(request_id: Any, code: int, message: str) -> bytes:
    return _dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def _answer(methods: dict[str, Callable[[Any, str | None], bytes]], request: Any, fault: str | None) -> bytes:
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        request_id = request.get("id") if isinstance(request, dict) else None
        return _error(request_id, INVALID_REQUEST, "invalid request")
    request_id = request.get("id")
    method = methods.get(request.get("method"))  # type: ignore[arg-type]
    if method is None:
        return _error(request_id, METHOD_NOT_FOUND, f"method {request.get('method')!r} not found")
    if fault == "rpc-32001":
        return _error(request_id, REQUEST_TIMEOUT, "[-32001] request exceeded processing limit threshold")
    try:
        result = method(request.get("params"), fault)
    except RpcError as exc:
        return _error(request_id, exc.code, exc.message)
    return b'{"jsonrpc":"2.0","id":%s,"result":%s}' % (_dumps(request_id), result)


def create_app(chain: Chain, faults: Faults | None = None) -> Starlette:
    """The devnet's HTTP app: JSON-RPC at "/", plus /invoke and /state."""
    faults = faults if faults is not None else Faults()
    methods = RpcMethods(chain, faults).table()

    async def json_rpc(request: Request) -> Response:
        fault = faults.take()
        if fault == "timeout":
            await asyncio.sleep(faults.timeout_seconds)
        elif fault == "http500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        elif fault == "garbage":
            return Response(b"<html><body>502 Bad Gateway</body></html>", media_type="application/json")
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            answer = _error(None, PARSE_ERROR, "parse error: the body is not JSON")
        else:
            if isinstance(payload, list) and payload:
                answer = b"[" + b",".join(_answer(methods, item, fault) for item in payload) + b"]"
            else:
                answer = _answer(methods, payload, fault)
        if fault == "truncated":
            answer = answer[: len(answer) // 2]
        return Response(answer, media_type="application/json")

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise InvalidInvocation("the body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidInvocation("the body must be a JSON object")
        return body

    def answered(receipt: Receipt) -> Response:
        if receipt.error is not None:
            return JSONResponse(
                {
                    "error": str(receipt.error),
                    "name": getattr(receipt.error, "name", "InvalidInvocation"),
                    "code": getattr(receipt.error, "code", None),
                    "txHash": receipt.tx_hash,
                    "ledger": receipt.ledger,
                },
                status_code=400,
            )
        return JSONResponse(receipt.to_json())

    async def invoke(request: Request) -> Response:
        try:
            body = await json_body(request)
        except InvalidInvocation as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if not isinstance(body.get("function"), str):
            return JSONResponse({"error": 'expected {"function": name, "args": {...}}; GET /invoke lists the '
                                          "functions"}, status_code=400)
        args = body.get("args") or {}
        if not isinstance(args, dict):
            return JSONResponse({"error": "args must be an object"}, status_code=400)
        return answered(await asyncio.wrap_future(chain.submit(body["function"], args)))

    async def functions(request: Request) -> Response:
        return JSONResponse({"build": chain.contract.build, "functions": calls.describe()})

    async def upgrade(request: Request) -> Response:
        try:
            build = (await json_body(request)).get("build")
            if not isinstance(build, str):
                raise InvalidInvocation('expected {"build": "c9f5d2e"}')
            future = chain.upgrade(build)
        except (InvalidInvocation, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return answered(await asyncio.wrap_future(future))

    async def allowance(request: Request) -> Response:
        try:
            body = await json_body(request)
            token = calls.parse_value(calls.Kind.ADDRESS, body.get("token"), "token")
            owner = calls.parse_value(calls.Kind.ADDRESS, body.get("owner"), "owner")
            amount = calls.parse_value(calls.Kind.I128, body.get("amount"), "amount")
            if not StrKey.is_valid_contract(token) or not 0 <= amount <= I128_MAX:
                raise InvalidInvocation("token must be a C... address and amount in [0, 2**127 - 1]")
        except InvalidInvocation as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        chain.approve(token, owner, amount)
        return JSONResponse({"token": token, "owner": owner, "spender": chain.contract_id, "amount": str(amount)})

    async def state(request: Request) -> Response:
        with chain.lock:
            return JSONResponse(_state_json(chain))

    return Starlette(
        routes=[
            Route("/", json_rpc, methods=["POST"]),
            Route("/invoke", invoke, methods=["POST"]),
            Route("/invoke", functions, methods=["GET"]),
            Route("/state", state, methods=["GET"]),
            Route("/upgrade", upgrade, methods=["POST"]),
            Route("/allowance", allowance, methods=["POST"]),
        ]
    )


def _state_json(chain: Chain) -> dict[str, Any]:
    """The contract's storage as it is kept, the build running, and the tokens."""
    contract = chain.contract
    config = contract.config
    return {
        "contractId": chain.contract_id,
        "build": contract.build,
        "wasmHash": contract.wasm_hash.hex(),
        "latestLedger": chain.latest.sequence,
        "config": None if config is None else config.to_json(),
        "streamCounter": str(contract.stream_counter),
        "contractVersion": contract.contract_version,
        "recordedWasmHash": None if contract.recorded_wasm_hash is None else contract.recorded_wasm_hash.hex(),
        "milestones": {str(stream_id): [milestone_json(m) for m in milestones]
                       for stream_id, milestones in contract.milestones.items()},
        "attestedIds": {str(stream_id): [a.hex() for a in attested]
                        for stream_id, attested in contract.attested.items()},
        "streams": [stream.to_json() for stream in contract.streams.values()],
        "tokens": [{"contractId": t.contract_id, "name": t.name, "symbol": t.symbol, "decimals": t.decimals}
                   for t in chain.tokens],
    }
